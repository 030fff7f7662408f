//! Tenant-scoped reads of executions and of the rows under sessions and
//! executions. The batch functions serve the GraphQL DataLoaders: each answers
//! every parent of one batch in one statement, paging per parent with
//! `ROW_NUMBER() OVER (PARTITION BY parent ORDER BY id DESC)`, so a nested
//! list costs statements by depth, not by rows.

use crate::entity::{
    action_approval, agent_execution, agent_session, execution_checkpoint, execution_control,
    tool_execution,
};
use crate::status::ExecutionStatus;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kernel::Error;
use kernel::actor::Actor;
use kernel::db::raw;
use kernel::page::{self, Page, Window};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IdenStatic, QueryFilter, Value,
};
use std::collections::HashMap;
use uuid::Uuid;

/// One page of the caller's executions, newest first, optionally of one status.
///
/// # Errors
/// Internal on database failure.
pub async fn executions_page(
    db: &impl ConnectionTrait,
    actor: &Actor,
    status: Option<ExecutionStatus>,
    window: Window,
) -> Result<Page<agent_execution::Model>, Error> {
    let mut select =
        agent_execution::Entity::find().filter(agent_execution::Column::UserId.eq(actor.user_id));
    if let Some(status) = status {
        select = select.filter(agent_execution::Column::Status.eq(status.as_str()));
    }
    page::fetch(db, select, agent_execution::Column::Id, |m| m.id, window).await
}

/// The forward page arguments of an edge (`first`, `after`), parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EdgeWindow {
    first: u64,
    after: Option<Uuid>,
}

impl EdgeWindow {
    /// Parses `first` (default 20, 0 to 100) and an `after` cursor in the
    /// opaque format of [`kernel::page`].
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `first` or `after`, with the messages of [`kernel::page::window`].
    pub fn parse(first: Option<i32>, after: Option<String>) -> Result<Self, Error> {
        // The kernel's parser owns the rules and the messages; its window keeps
        // its fields private, so the cursor is read again here.
        page::window(first, after.clone(), None, None)?;
        let after = after.map(|c| decode_cursor(&c)).transpose()?;
        Ok(Self {
            first: first.unwrap_or(page::DEFAULT_PAGE_SIZE) as u64,
            after,
        })
    }
}

fn decode_cursor(text: &str) -> Result<Uuid, Error> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| Error::bad_input("after", "not a valid cursor"))
}

/// One parent's page of children: the parent row, its owner (every child row
/// carries the owner's id too, checked again) and the page arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EdgeKey {
    /// The parent row.
    pub parent: Uuid,
    /// The parent's owner.
    pub owner: Uuid,
    /// The page asked for.
    pub window: EdgeWindow,
}

/// A row by id, as seen by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnedKey {
    /// The row (or, for controls, the execution).
    pub id: Uuid,
    /// Its owner.
    pub owner: Uuid,
}

/// The child table of an edge: the column naming the parent, and how to read
/// a row's parent and id.
pub struct Children<E: EntityTrait> {
    /// The parent column.
    pub parent: E::Column,
    /// A row's parent.
    pub parent_of: fn(&E::Model) -> Uuid,
    /// A row's id (its page key).
    pub id_of: fn(&E::Model) -> Uuid,
}

/// A session's executions.
pub const EXECUTIONS: Children<agent_execution::Entity> = Children {
    parent: agent_execution::Column::SessionId,
    parent_of: |m| m.session_id,
    id_of: |m| m.id,
};

/// An execution's tool calls.
pub const TOOL_EXECUTIONS: Children<tool_execution::Entity> = Children {
    parent: tool_execution::Column::ExecutionId,
    parent_of: |m| m.execution_id,
    id_of: |m| m.id,
};

/// An execution's approvals.
pub const APPROVALS: Children<action_approval::Entity> = Children {
    parent: action_approval::Column::ExecutionId,
    parent_of: |m| m.execution_id,
    id_of: |m| m.id,
};

/// An execution's checkpoints.
pub const CHECKPOINTS: Children<execution_checkpoint::Entity> = Children {
    parent: execution_checkpoint::Column::ExecutionId,
    parent_of: |m| m.execution_id,
    id_of: |m| m.id,
};

/// Pages of children for every key of a batch: one statement per distinct
/// `(owner, after)` in the batch (one in practice: a document gives each edge
/// field one `after`), each fetching `first + 1` rows per parent so
/// `hasNextPage` is exact. Every key gets a page, empty when it has no rows.
///
/// # Errors
/// Internal on database failure.
pub async fn children_pages<E>(
    db: &impl ConnectionTrait,
    children: &Children<E>,
    keys: &[EdgeKey],
) -> Result<HashMap<EdgeKey, Page<E::Model>>, Error>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Sync,
{
    let mut groups: HashMap<(Uuid, Option<Uuid>), Vec<EdgeKey>> = HashMap::new();
    for key in keys {
        groups
            .entry((key.owner, key.window.after))
            .or_default()
            .push(*key);
    }
    let mut pages = HashMap::with_capacity(keys.len());
    for ((owner, after), group) in groups {
        let limit = group.iter().map(|k| k.window.first).max().unwrap_or(0) + 1;
        let parents: Vec<Uuid> = group.iter().map(|k| k.parent).collect();
        let rows = ranked::<E>(db, children.parent, owner, &parents, after, limit).await?;
        let mut by_parent: HashMap<Uuid, Vec<E::Model>> = HashMap::new();
        for row in rows {
            by_parent
                .entry((children.parent_of)(&row))
                .or_default()
                .push(row);
        }
        for key in group {
            let rows = by_parent.get(&key.parent).cloned().unwrap_or_default();
            pages.insert(key, page_of(rows, key.window, children.id_of));
        }
    }
    Ok(pages)
}

fn page_of<M>(mut rows: Vec<M>, window: EdgeWindow, id_of: fn(&M) -> Uuid) -> Page<M> {
    let has_next_page = rows.len() as u64 > window.first;
    rows.truncate(window.first as usize);
    Page {
        items: rows.into_iter().map(|m| (id_of(&m), m)).collect(),
        has_next_page,
        has_previous_page: window.after.is_some(),
    }
}

/// The first `limit` rows of each parent, newest first, in one statement.
async fn ranked<E>(
    db: &impl ConnectionTrait,
    parent: E::Column,
    owner: Uuid,
    parents: &[Uuid],
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<E::Model>, Error>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
{
    let table = E::default().table_name().to_owned();
    let parent = parent.as_str();
    let marks = vec!["?"; parents.len()].join(", ");
    let cursor = if after.is_some() { " AND t.id < ?" } else { "" };
    let sql = format!(
        "SELECT * FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.\"{parent}\" ORDER BY t.id DESC) \
         AS page_rank FROM \"{table}\" t WHERE t.user_id = ? AND t.\"{parent}\" IN ({marks}){cursor}) \
         ranked WHERE page_rank <= ? ORDER BY \"{parent}\", id DESC"
    );
    let mut values: Vec<Value> = Vec::with_capacity(parents.len() + 3);
    values.push(owner.into());
    values.extend(parents.iter().map(|p| Value::from(*p)));
    values.extend(after.map(Value::from));
    values.push((limit as i64).into());
    let stmt = raw(db.get_database_backend(), &sql, values);
    Ok(E::find().from_raw_sql(stmt).all(db).await?)
}

/// Sessions by id, only where the owner matches: one statement per batch.
///
/// # Errors
/// Internal on database failure.
pub async fn sessions_by_id(
    db: &impl ConnectionTrait,
    keys: &[OwnedKey],
) -> Result<HashMap<OwnedKey, agent_session::Model>, Error> {
    use agent_session::Column as S;
    let rows = agent_session::Entity::find()
        .filter(S::Id.is_in(keys.iter().map(|k| k.id)))
        .filter(S::UserId.is_in(owners(keys)))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let key = OwnedKey {
                id: m.id,
                owner: m.user_id,
            };
            (key, m)
        })
        .collect())
}

/// Control rows by execution id, only where the owner matches: one statement per batch.
///
/// # Errors
/// Internal on database failure.
pub async fn controls_of(
    db: &impl ConnectionTrait,
    keys: &[OwnedKey],
) -> Result<HashMap<OwnedKey, execution_control::Model>, Error> {
    use execution_control::Column as C;
    let rows = execution_control::Entity::find()
        .filter(C::ExecutionId.is_in(keys.iter().map(|k| k.id)))
        .filter(C::UserId.is_in(owners(keys)))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let key = OwnedKey {
                id: m.execution_id,
                owner: m.user_id,
            };
            (key, m)
        })
        .collect())
}

fn owners(keys: &[OwnedKey]) -> Vec<Uuid> {
    let mut owners: Vec<Uuid> = keys.iter().map(|k| k.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    owners
}
