//! The HTTP runner against a tiny chat-completions server started in the
//! test on 127.0.0.1: no network beyond the loopback.

mod common;
mod engine_common;

use agents::http_runner::{HttpRunner, HttpRunnerConfig, HttpRunnerConfigError};
use agents::plan::{Plan, StepTokens};
use agents::runner::{AgentRunner, StepContext, StepOutcome};
use common::Fixture;
use engine_common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the server received.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    authorization: Option<String>,
    body: Value,
}

/// Serves `status` and `body` to every request; returns the base URL and
/// what was received.
async fn serve(status: u16, body: Value) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = body.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed early");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    break (end + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = socket.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.lines();
            let request_line = lines.next().unwrap_or_default().to_owned();
            let authorization = lines
                .find(|l| l.to_lowercase().starts_with("authorization:"))
                .map(|l| l.split_once(':').unwrap().1.trim().to_owned());
            let body = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap();
            log.lock().unwrap().push(Seen {
                request_line,
                authorization,
                body,
            });
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{answer}",
                answer.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            let _ = socket.shutdown().await;
        }
    });
    (base, seen)
}

fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "whatever-the-server-says",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49 }
    })
}

fn config(base: &str) -> HttpRunnerConfig {
    HttpRunnerConfig {
        base_url: base.to_owned(),
        model: "claude-haiku-3.5".into(),
        api_key: Some("sk-test-secret".into()),
        provider: "anthropic".into(),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn the_http_runner_sends_task_step_and_instruction_and_reports_the_reply_and_usage() {
    let (base, seen) = serve(200, completion("Europe first.")).await;
    let runner = HttpRunner::new(config(&base)).unwrap();
    assert_eq!(runner.url(), format!("{base}/v1/chat/completions"));
    assert!(!runner.needs_plan());
    let p = plan(vec![(
        "research",
        vec![think("Compare markets"), think("Decide")],
    )]);
    let out = runner
        .step(StepContext {
            task: "Pick a market",
            plan: &p,
            phase_index: 0,
            step_index: 0,
            instruction: Some("only Europe"),
        })
        .await
        .unwrap();
    assert_eq!(out.thoughts, ["Europe first."]);
    assert_eq!(out.outcome, StepOutcome::Continue);
    assert_eq!(
        out.tokens,
        Some(StepTokens {
            provider: "anthropic".into(),
            model: "claude-haiku-3.5".into(),
            input_tokens: 42,
            output_tokens: 7,
        })
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line, "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer sk-test-secret")
    );
    assert_eq!(seen[0].body["model"], "claude-haiku-3.5");
    let user = seen[0].body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("Task: Pick a market"), "{user}");
    assert!(user.contains("Step 1 of 2: Compare markets"), "{user}");
    assert!(user.contains("only Europe"), "{user}");

    let last = runner
        .step(StepContext {
            task: "Pick a market",
            plan: &p,
            phase_index: 0,
            step_index: 1,
            instruction: None,
        })
        .await
        .unwrap();
    assert_eq!(
        last.outcome,
        StepOutcome::Finish(json!("Europe first.")),
        "the last step's reply is the result"
    );
}

#[tokio::test]
async fn without_a_plan_the_http_runner_plans_one_phase_that_asks_the_model() {
    let runner = HttpRunner::new(config("https://models.example.com")).unwrap();
    let p = runner.plan("Summarise", None).await.unwrap();
    assert_eq!(p.phases.len(), 1);
    assert_eq!(p.phases[0].steps.len(), 1);
    let given = plan(vec![("mine", vec![think("a")])]);
    assert_eq!(runner.plan("x", Some(&given)).await.unwrap(), given);
    let p: Plan = p.parse().unwrap();
    assert!(p.step(0, 0).is_some());
}

#[tokio::test]
async fn an_error_answer_is_a_runner_error_that_never_shows_the_key() {
    let (base, _) = serve(500, json!({ "error": "overloaded" })).await;
    let runner = HttpRunner::new(config(&format!("{base}/v1/"))).unwrap();
    assert_eq!(runner.url(), format!("{base}/v1/chat/completions"));
    let p = plan(vec![("p", vec![think("a")])]);
    let err = runner
        .step(StepContext {
            task: "t",
            plan: &p,
            phase_index: 0,
            step_index: 0,
            instruction: None,
        })
        .await
        .unwrap_err();
    assert!(
        err.0.contains("500") && err.0.contains("overloaded"),
        "{}",
        err.0
    );
    assert!(!err.0.contains("sk-test-secret"));

    // A port nobody listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = HttpRunner::new(config(&gone)).unwrap();
    let err = unreachable
        .step(StepContext {
            task: "t",
            plan: &p,
            phase_index: 0,
            step_index: 0,
            instruction: None,
        })
        .await
        .unwrap_err();
    assert!(err.0.contains("could not be reached"), "{}", err.0);
}

#[tokio::test]
async fn bad_configuration_is_refused_at_start() {
    let mut c = config("ftp://example.com");
    assert!(matches!(
        HttpRunner::new(c.clone()),
        Err(HttpRunnerConfigError::BaseUrl)
    ));
    c.base_url = "not a url".into();
    assert!(matches!(
        HttpRunner::new(c.clone()),
        Err(HttpRunnerConfigError::BaseUrl)
    ));
    c.base_url = "https://api.example.com".into();
    c.model = "  ".into();
    assert!(matches!(
        HttpRunner::new(c.clone()),
        Err(HttpRunnerConfigError::Model)
    ));
    c.model = "m".into();
    c.provider = "openai".into();
    assert!(matches!(
        HttpRunner::new(c.clone()),
        Err(HttpRunnerConfigError::Provider)
    ));
    let debug = format!("{c:?}");
    assert!(!debug.contains("sk-test-secret"), "{debug}");
}

#[tokio::test]
async fn a_run_without_a_plan_is_played_by_the_http_runner_and_its_usage_billed() {
    let (base, seen) = serve(200, completion("The report is done.")).await;
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let agents = with_runner(&f, HttpRunner::new(config(&base)).unwrap());
    let run = start_with(&f, &agents, &alice, &session, None).await;
    assert_eq!(run.runner, "http");
    tick(&worker_with(&f, agents, "w")).await;

    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    assert_eq!(run.result, Some(json!("The report is done.")));
    assert_eq!(thinking(&run)[0].text, "The report is done.");
    assert_eq!(token_rows(&f, run.id).await, 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(reservation_status(&f, &run).await, "committed");
}

#[tokio::test]
async fn a_model_endpoint_failure_fails_the_run_with_its_reason() {
    let (base, _) = serve(503, json!({ "error": "down for maintenance" })).await;
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let agents = with_runner(&f, HttpRunner::new(config(&base)).unwrap());
    let run = start_with(&f, &agents, &alice, &session, None).await;
    tick(&worker_with(&f, agents, "w")).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "failed");
    assert!(
        run.error.as_deref().unwrap().contains("503"),
        "{:?}",
        run.error
    );
    assert_eq!(reservation_status(&f, &run).await, "released");
    assert_eq!(checkpoints(&f, run.id).await[0].checkpoint_reason, "error");
}
