//! DataLoaders of the agents edges: each edge is one batched statement per
//! level of a query, whatever the number of parents.
//!
//! One [`AgentsLoader`] serves every edge; the key type picks the batch.
//! Page keys carry the page arguments, so parents asking for different pages
//! never share a result. Loaders do not cache: a WebSocket connection keeps
//! its loader for its whole life, and a cache there would serve stale rows.

use crate::entity::{
    action_approval, agent_execution, agent_session, execution_checkpoint, execution_control,
    tool_execution,
};
use crate::reads::{self, EdgeKey, OwnedKey};
use async_graphql::connection::Connection;
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Data, ErrorExtensions, OutputType, Request};
use futures_util::future::BoxFuture;
use kernel::gql::ContextExt;
use kernel::page::Page;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A loader failure, shared by every field that waited on the batch.
#[derive(Clone, Debug)]
pub struct LoadError(Arc<kernel::Error>);

impl LoadError {
    /// The GraphQL form, with the API code.
    pub fn to_gql(&self) -> async_graphql::Error {
        self.0.extend()
    }
}

impl From<kernel::Error> for LoadError {
    fn from(e: kernel::Error) -> Self {
        Self(Arc::new(e))
    }
}

/// The loader behind every agents edge.
pub struct AgentsLoader {
    db: DatabaseConnection,
    /// Keys asked for so far, watched by [`spawn_batch`] to see the resolvers settle.
    asked: Arc<AtomicUsize>,
}

/// A session's page of executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecutionsOf(pub EdgeKey);
/// An execution's page of tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ToolExecutionsOf(pub EdgeKey);
/// An execution's page of approvals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApprovalsOf(pub EdgeKey);
/// An execution's page of checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckpointsOf(pub EdgeKey);
/// A session by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionOf(pub OwnedKey);
/// An execution's control row, by execution id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlOf(pub OwnedKey);

macro_rules! page_loader {
    ($key:ident, $entity:ident, $children:ident) => {
        impl Loader<$key> for AgentsLoader {
            type Value = Page<$entity::Model>;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                let inner: Vec<EdgeKey> = keys.iter().map(|k| k.0).collect();
                let pages = reads::children_pages(&self.db, &reads::$children, &inner).await?;
                Ok(pages.into_iter().map(|(k, v)| ($key(k), v)).collect())
            }
        }
    };
}

page_loader!(ExecutionsOf, agent_execution, EXECUTIONS);
page_loader!(ToolExecutionsOf, tool_execution, TOOL_EXECUTIONS);
page_loader!(ApprovalsOf, action_approval, APPROVALS);
page_loader!(CheckpointsOf, execution_checkpoint, CHECKPOINTS);

impl Loader<SessionOf> for AgentsLoader {
    type Value = agent_session::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[SessionOf],
    ) -> Result<HashMap<SessionOf, Self::Value>, Self::Error> {
        let inner: Vec<OwnedKey> = keys.iter().map(|k| k.0).collect();
        let rows = reads::sessions_by_id(&self.db, &inner).await?;
        Ok(rows.into_iter().map(|(k, v)| (SessionOf(k), v)).collect())
    }
}

impl Loader<ControlOf> for AgentsLoader {
    type Value = execution_control::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ControlOf],
    ) -> Result<HashMap<ControlOf, Self::Value>, Self::Error> {
        let inner: Vec<OwnedKey> = keys.iter().map(|k| k.0).collect();
        let rows = reads::controls_of(&self.db, &inner).await?;
        Ok(rows.into_iter().map(|(k, v)| (ControlOf(k), v)).collect())
    }
}

/// Parents per statement: more than the complexity limit lets one level of a
/// query hold, and far under both databases' bind-parameter limits.
const MAX_BATCH_KEYS: usize = 5_000;
/// Most scheduler turns a batch waits for its keys.
const MAX_BATCH_TURNS: usize = 4096;
/// Turns without a new key after which the resolvers are taken to be settled.
const QUIET_TURNS: usize = 2;

/// Runs a batch once the request's resolvers stop asking for keys. A list's
/// resolvers are polled a couple of items per scheduler turn (async-graphql
/// resolves each item's fields in a `FuturesUnordered`, which yields), so a
/// fixed delay splits a page of 100 parents into several batches on a slow
/// worker; waiting for the key count to stand still keeps it in one, so the
/// statement count depends on the query's depth only. Then the loader's own
/// 1 ms delay applies.
fn spawn_batch(asked: Arc<AtomicUsize>) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync {
    move |batch| {
        let asked = asked.clone();
        tokio::spawn(async move {
            let (mut seen, mut quiet) = (asked.load(Ordering::SeqCst), 0);
            for _ in 0..MAX_BATCH_TURNS {
                tokio::task::yield_now().await;
                let now = asked.load(Ordering::SeqCst);
                quiet = if now == seen { quiet + 1 } else { 0 };
                seen = now;
                if quiet >= QUIET_TURNS {
                    break;
                }
            }
            batch.await;
        });
    }
}

fn new_loader(db: &DatabaseConnection) -> DataLoader<AgentsLoader> {
    let asked = Arc::new(AtomicUsize::new(0));
    let loader = AgentsLoader {
        db: db.clone(),
        asked: asked.clone(),
    };
    DataLoader::new(loader, spawn_batch(asked)).max_batch_size(MAX_BATCH_KEYS)
}

pub use kernel::page::{edge_complexity, list_complexity};

/// Adds the agents loader to one HTTP request.
pub fn register_loaders(request: Request, db: &DatabaseConnection) -> Request {
    request.data(new_loader(db))
}

/// Adds the agents loader to a WebSocket connection's data, for the resolvers
/// its subscriptions run.
pub fn insert_loaders(data: &mut Data, db: &DatabaseConnection) {
    data.insert(new_loader(db));
}

/// The registered loader, or, where none was registered (a schema run without
/// the server's wiring), one for this field alone: right answers, unbatched.
pub(crate) enum LoaderRef<'a> {
    Shared(&'a DataLoader<AgentsLoader>),
    Own(DataLoader<AgentsLoader>),
}

impl Deref for LoaderRef<'_> {
    type Target = DataLoader<AgentsLoader>;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Shared(l) => l,
            Self::Own(l) => l,
        }
    }
}

fn loader<'a>(ctx: &Context<'a>) -> LoaderRef<'a> {
    match ctx.data_opt::<DataLoader<AgentsLoader>>() {
        Some(l) => LoaderRef::Shared(l),
        None => LoaderRef::Own(new_loader(ctx.db())),
    }
}

/// Loads the value of one key through the request's loader.
pub(crate) async fn load<K>(
    ctx: &Context<'_>,
    key: K,
) -> async_graphql::Result<Option<<AgentsLoader as Loader<K>>::Value>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    AgentsLoader: Loader<K, Error = LoadError>,
{
    let loader = loader(ctx);
    loader.loader().asked.fetch_add(1, Ordering::SeqCst);
    loader.load_one(key).await.map_err(|e| e.to_gql())
}

/// Loads one edge page and turns it into a connection of `N`.
pub(crate) async fn connection<K, M, N>(
    ctx: &Context<'_>,
    key: K,
    node: impl Fn(M) -> N,
) -> async_graphql::Result<Connection<String, N>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    AgentsLoader: Loader<K, Value = Page<M>, Error = LoadError>,
    M: Send + Sync + Clone + 'static,
    N: OutputType,
{
    let page = load(ctx, key).await?;
    let page = page.unwrap_or_else(|| Page {
        items: Vec::new(),
        has_next_page: false,
        has_previous_page: false,
    });
    Ok(page.into_connection(node))
}
