//! A real `graphql-transport-ws` client for tests: the app served on a free
//! local port and a WebSocket client speaking the protocol.

use super::TestApp;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for one message before a test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(15);

/// Serves the app's real routes on a free local port.
pub fn serve(app: &TestApp) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("its address");
    let state = app.state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(server::http::request_context))
            .configure(server::routes(state.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    addr
}

/// Opens `/graphql/ws` with the `graphql-transport-ws` subprotocol.
pub async fn open(addr: SocketAddr) -> Ws {
    let mut req = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .expect("a ws request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (ws, res) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket handshake");
    assert_eq!(
        res.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    ws
}

pub async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .expect("send");
}

/// The next protocol message; a close frame reads as `{"close": code, "reason": ...}`.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message within the wait");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("json"),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((0, String::new()));
                return json!({ "close": code, "reason": reason });
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => return json!({ "close": -1, "reason": err.to_string() }),
            None => return json!({ "close": -1, "reason": "ended" }),
        }
    }
}

/// Connects and initialises with `token` as the bearer credential.
pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Ws {
    let mut ws = open(addr).await;
    let payload = match token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    assert_eq!(recv(&mut ws).await, json!({ "type": "connection_ack" }));
    ws
}

pub async fn subscribe(ws: &mut Ws, id: &str, query: &str) {
    send(
        ws,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
}
