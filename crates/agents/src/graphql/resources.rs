//! The roots of browser sessions, browser contexts, generated projects and
//! knowledge entries. Every list is the caller's own, newest first; a single
//! query answers null for another user's id, a mutation `NOT_FOUND`.

use super::agents;
use super::resource_types::*;
use crate::browser::{self, BrowserContextFields, BrowserSessionFields, Finish, NewBrowserContext};
use crate::browser::{NewBrowserSession, Storage};
use crate::knowledge::{self, EntryChange, NewEntry};
use crate::projects::ProjectStatus;
use crate::projects::{self, NewProject, ProjectChange, ProjectChangeFields, ProjectFields};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use kernel::crypto::KeyRing;
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use kernel::tx::Tx;
use serde_json::{Value, json};
use uuid::Uuid;

fn now(ctx: &Context<'_>) -> DateTime<Utc> {
    agents(ctx).clock.now()
}

fn keys<'a>(ctx: &Context<'a>) -> &'a KeyRing {
    // The server registers the vault key ring at start; without one it does not start.
    ctx.data_unchecked::<KeyRing>()
}

fn uuid(id: &ID) -> Result<Uuid> {
    parse_id(id, "id").gql()
}

fn window(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<kernel::page::Window> {
    kernel::page::window(first, after, last, before).gql()
}

/// Names the changed object for the mutation's audit record, then commits.
async fn commit(mut txn: Tx, kind: &str, id: Uuid, view: Value) -> Result<()> {
    txn.subject(kind, id);
    txn.changes(None, Some(view));
    txn.commit().await.gql()
}

fn session_view(s: &crate::entity::browser_session::Model) -> Value {
    json!({ "sessionId": s.session_id, "status": s.status })
}

// Never the storage: the audit log holds no cookies, sealed or not.
fn context_view(c: &crate::entity::browser_context::Model) -> Value {
    json!({
        "contextId": c.context_id,
        "clientId": c.client_id,
        "isolationLevel": c.isolation_level,
        "isActive": c.is_active,
        "storageKeyVersion": c.storage_key_version,
    })
}

fn project_view(p: &crate::entity::generated_project::Model) -> Value {
    json!({ "name": p.name, "status": p.status, "techStack": p.tech_stack })
}

fn entry_view(e: &crate::entity::knowledge_entry::Model) -> Value {
    json!({
        "category": e.category,
        "isActive": e.is_active,
        "confidenceHundredths": e.confidence_hundredths,
        "usageCount": e.usage_count,
    })
}

impl From<RecordBrowserSessionInput> for BrowserSessionFields {
    fn from(i: RecordBrowserSessionInput) -> Self {
        Self {
            session_id: i.session_id,
            url: i.url,
            project_id: i.project_id,
            debug_url: i.debug_url,
            recording_url: i.recording_url,
            metadata: i.metadata.map(|j| j.0),
            expires_at: i.expires_at,
        }
    }
}

impl From<CreateBrowserContextInput> for BrowserContextFields {
    fn from(i: CreateBrowserContextInput) -> Self {
        Self {
            client_id: i.client_id,
            context_id: i.context_id,
            isolation: i.isolation_level.map(Into::into),
            storage: i.storage.map(|j| j.0),
            metadata: i.metadata.map(|j| j.0),
            expires_at: i.expires_at,
        }
    }
}

fn project_fields(i: CreateGeneratedProjectInput) -> Result<ProjectFields> {
    Ok(ProjectFields {
        name: i.name,
        description: i.description,
        tech_stack: i.tech_stack,
        features: i.features.map(|j| j.0),
        files_snapshot: i.files_snapshot.map(|j| j.0),
        execution_id: i
            .execution_id
            .map(|e| parse_id(&e, "executionId"))
            .transpose()
            .gql()?,
        dev_server_port: i.dev_server_port,
        preview_url: i.preview_url,
        deployment_url: i.deployment_url,
    })
}

impl From<UpdateGeneratedProjectInput> for ProjectChangeFields {
    fn from(i: UpdateGeneratedProjectInput) -> Self {
        Self {
            name: i.name,
            description: patch(i.description, |v| v),
            tech_stack: i.tech_stack,
            features: i.features.map(|j| j.0),
            files_snapshot: patch(i.files_snapshot, |j| j.0),
            dev_server_port: patch(i.dev_server_port, |v| v),
            preview_url: patch(i.preview_url, |v| v),
            deployment_url: patch(i.deployment_url, |v| v),
        }
    }
}

/// Browser, project and knowledge queries.
#[derive(Default)]
pub struct ResourceQuery;

#[Object]
impl ResourceQuery {
    /// The caller's browser sessions, newest first, of one status if given
    /// (an active session past its deadline counts as `EXPIRED`).
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    async fn browser_sessions(
        &self,
        ctx: &Context<'_>,
        status: Option<BrowserSessionStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, BrowserSession>> {
        let (actor, w) = (ctx.actor()?, window(first, after, last, before)?);
        let page = browser::list_sessions(ctx.db(), actor, status.map(Into::into), w, now(ctx))
            .await
            .gql()?;
        Ok(page.into_connection(BrowserSession))
    }

    /// One of the caller's browser sessions; null for any other id.
    async fn browser_session(&self, ctx: &Context<'_>, id: ID) -> Result<Option<BrowserSession>> {
        let (actor, id) = (ctx.actor()?, uuid(&id)?);
        let found = browser::session(ctx.db(), actor, id, now(ctx))
            .await
            .gql()?;
        Ok(found.map(BrowserSession))
    }

    /// The caller's browser contexts, newest first, without their storage;
    /// with `usableOnly`, only active ones not past their deadline.
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    async fn browser_contexts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] usable_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, BrowserContext>> {
        let (actor, w) = (ctx.actor()?, window(first, after, last, before)?);
        let page = browser::list_contexts(ctx.db(), actor, usable_only == Some(true), w, now(ctx))
            .await
            .gql()?;
        Ok(page.into_connection(BrowserContext))
    }

    /// One of the caller's browser contexts, without its storage; null for any other id.
    async fn browser_context(&self, ctx: &Context<'_>, id: ID) -> Result<Option<BrowserContext>> {
        let (actor, id) = (ctx.actor()?, uuid(&id)?);
        let found = browser::context(ctx.db(), actor, id).await.gql()?;
        Ok(found.map(BrowserContext))
    }

    /// Opens one of the caller's browser contexts' storage; null for any other
    /// id. Needs a writing credential; every reveal stamps `lastUsedAt` and is
    /// written to the security audit log.
    async fn browser_context_storage(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<BrowserContextStorage>> {
        let (actor, id) = (ctx.writer()?, uuid(&id)?);
        let txn = ctx.begin().await?;
        let Some((row, storage)) = browser::reveal_storage(&txn, actor, keys(ctx), id, now(ctx))
            .await
            .gql()?
        else {
            return Ok(None);
        };
        let view = context_view(&row);
        core_auth::security::record_access(
            &txn,
            actor,
            "browser_context.reveal",
            "browser_context",
            Some(&id.to_string()),
            Some(view.clone()),
        )
        .await
        .gql()?;
        commit(txn, "browser_context", id, view).await?;
        Ok(Some(BrowserContextStorage {
            context: BrowserContext(row),
            storage: storage.map(|s| async_graphql::Json(Storage::into_json(s))),
        }))
    }

    /// The caller's generated projects, newest first: of `status`, or all but deleted ones.
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    async fn generated_projects(
        &self,
        ctx: &Context<'_>,
        status: Option<GeneratedProjectStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, GeneratedProject>> {
        let (actor, w) = (ctx.actor()?, window(first, after, last, before)?);
        let page = projects::list(ctx.db(), actor, status.map(Into::into), w)
            .await
            .gql()?;
        Ok(page.into_connection(GeneratedProject))
    }

    /// One of the caller's generated projects (deleted ones too); null for any other id.
    async fn generated_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<GeneratedProject>> {
        let (actor, id) = (ctx.actor()?, uuid(&id)?);
        let found = projects::project(ctx.db(), actor, id).await.gql()?;
        Ok(found.map(GeneratedProject))
    }

    /// The caller's knowledge entries, newest first, of one category if
    /// given; active ones only unless `activeOnly` is false (null counts as true).
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn knowledge_entries(
        &self,
        ctx: &Context<'_>,
        category: Option<KnowledgeCategory>,
        #[graphql(default_with = "Some(true)")] active_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, KnowledgeEntry>> {
        let (actor, w) = (ctx.actor()?, window(first, after, last, before)?);
        let page = knowledge::list(
            ctx.db(),
            actor,
            category.map(Into::into),
            active_only != Some(false),
            w,
        )
        .await
        .gql()?;
        Ok(page.into_connection(KnowledgeEntry))
    }

    /// One of the caller's knowledge entries; null for any other id.
    async fn knowledge_entry(&self, ctx: &Context<'_>, id: ID) -> Result<Option<KnowledgeEntry>> {
        let (actor, id) = (ctx.actor()?, uuid(&id)?);
        let found = knowledge::entry(ctx.db(), actor, id).await.gql()?;
        Ok(found.map(KnowledgeEntry))
    }
}

/// Browser, project and knowledge mutations; each is one transaction.
#[derive(Default)]
pub struct ResourceMutation;

#[Object]
impl ResourceMutation {
    /// Records a browser session the provider started; it starts `ACTIVE`.
    async fn record_browser_session(
        &self,
        ctx: &Context<'_>,
        input: RecordBrowserSessionInput,
    ) -> Result<BrowserSession> {
        let (actor, at) = (ctx.writer()?, now(ctx));
        let req = NewBrowserSession::parse(input.into(), at).gql()?;
        let txn = ctx.begin().await?;
        let row = browser::record_session(&txn, actor, req, at).await.gql()?;
        commit(txn, "browser_session", row.id, session_view(&row)).await?;
        Ok(BrowserSession(row))
    }

    /// Ends an active browser session normally.
    async fn complete_browser_session(
        &self,
        ctx: &Context<'_>,
        input: CompleteBrowserSessionInput,
    ) -> Result<BrowserSession> {
        let (actor, id) = (ctx.writer()?, uuid(&input.id)?);
        let finish = Finish::completed(input.url, input.recording_url).gql()?;
        finish_session(ctx, actor, id, finish).await
    }

    /// Ends an active browser session with an error.
    async fn fail_browser_session(
        &self,
        ctx: &Context<'_>,
        input: FailBrowserSessionInput,
    ) -> Result<BrowserSession> {
        let (actor, id) = (ctx.writer()?, uuid(&input.id)?);
        let finish = Finish::failed(input.error).gql()?;
        finish_session(ctx, actor, id, finish).await
    }

    /// Keeps a browser context; its storage is sealed with the vault key ring.
    async fn create_browser_context(
        &self,
        ctx: &Context<'_>,
        input: CreateBrowserContextInput,
    ) -> Result<BrowserContext> {
        let (actor, at) = (ctx.writer()?, now(ctx));
        let req = NewBrowserContext::parse(input.into(), at).gql()?;
        let txn = ctx.begin().await?;
        let row = browser::create_context(&txn, actor, keys(ctx), req, at)
            .await
            .gql()?;
        commit(txn, "browser_context", row.id, context_view(&row)).await?;
        Ok(BrowserContext(row))
    }

    /// Replaces a usable browser context's storage, sealed under the newest key.
    async fn update_browser_context_storage(
        &self,
        ctx: &Context<'_>,
        input: UpdateBrowserContextStorageInput,
    ) -> Result<BrowserContext> {
        let (actor, id) = (ctx.writer()?, uuid(&input.id)?);
        let storage = Storage::parse(input.storage.0).gql()?;
        let txn = ctx.begin().await?;
        let row = browser::update_storage(&txn, actor, keys(ctx), id, storage, now(ctx))
            .await
            .gql()?;
        commit(txn, "browser_context", id, context_view(&row)).await?;
        Ok(BrowserContext(row))
    }

    /// Deactivates a browser context and drops its storage.
    async fn deactivate_browser_context(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<BrowserContext> {
        let (actor, id) = (ctx.writer()?, uuid(&id)?);
        let txn = ctx.begin().await?;
        let row = browser::deactivate_context(&txn, actor, id, now(ctx))
            .await
            .gql()?;
        commit(txn, "browser_context", id, context_view(&row)).await?;
        Ok(BrowserContext(row))
    }

    /// Keeps a generated project, `ACTIVE`.
    async fn create_generated_project(
        &self,
        ctx: &Context<'_>,
        input: CreateGeneratedProjectInput,
    ) -> Result<GeneratedProject> {
        let actor = ctx.writer()?;
        let req = NewProject::parse(project_fields(input)?).gql()?;
        let txn = ctx.begin().await?;
        let row = projects::create(&txn, actor, req, now(ctx)).await.gql()?;
        commit(txn, "generated_project", row.id, project_view(&row)).await?;
        Ok(GeneratedProject(row))
    }

    /// Changes a generated project that is not deleted.
    async fn update_generated_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateGeneratedProjectInput,
    ) -> Result<GeneratedProject> {
        let (actor, id) = (ctx.writer()?, uuid(&input.id)?);
        let change = ProjectChange::parse(input.into()).gql()?;
        let txn = ctx.begin().await?;
        let row = projects::update(&txn, actor, id, change, now(ctx))
            .await
            .gql()?;
        commit(txn, "generated_project", id, project_view(&row)).await?;
        Ok(GeneratedProject(row))
    }

    /// Archives an active generated project.
    async fn archive_generated_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<GeneratedProject> {
        move_project(ctx, id, ProjectStatus::Archived).await
    }

    /// Restores an archived generated project to `ACTIVE`.
    async fn restore_generated_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<GeneratedProject> {
        move_project(ctx, id, ProjectStatus::Active).await
    }

    /// Deletes an archived generated project (final).
    async fn delete_generated_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<GeneratedProject> {
        move_project(ctx, id, ProjectStatus::Deleted).await
    }

    /// Keeps something learned, active.
    async fn create_knowledge_entry(
        &self,
        ctx: &Context<'_>,
        input: CreateKnowledgeEntryInput,
    ) -> Result<KnowledgeEntry> {
        let actor = ctx.writer()?;
        let req = NewEntry::parse(
            input.category.into(),
            input.context,
            input.content,
            input.examples.map(|j| j.0),
            input.confidence,
        )
        .gql()?;
        let txn = ctx.begin().await?;
        let row = knowledge::create(&txn, actor, req, now(ctx)).await.gql()?;
        commit(txn, "knowledge_entry", row.id, entry_view(&row)).await?;
        Ok(KnowledgeEntry(row))
    }

    /// Changes an active knowledge entry.
    async fn update_knowledge_entry(
        &self,
        ctx: &Context<'_>,
        input: UpdateKnowledgeEntryInput,
    ) -> Result<KnowledgeEntry> {
        let (actor, id) = (ctx.writer()?, uuid(&input.id)?);
        let change = EntryChange::parse(
            input.category.map(Into::into),
            input.context,
            input.content,
            patch(input.examples, |j| j.0),
            input.confidence,
        )
        .gql()?;
        let txn = ctx.begin().await?;
        let row = knowledge::update(&txn, actor, id, change, now(ctx))
            .await
            .gql()?;
        commit(txn, "knowledge_entry", id, entry_view(&row)).await?;
        Ok(KnowledgeEntry(row))
    }

    /// Deactivates a knowledge entry: it takes no more changes or uses.
    async fn deactivate_knowledge_entry(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<KnowledgeEntry> {
        let (actor, id) = (ctx.writer()?, uuid(&id)?);
        let txn = ctx.begin().await?;
        let row = knowledge::deactivate(&txn, actor, id, now(ctx))
            .await
            .gql()?;
        commit(txn, "knowledge_entry", id, entry_view(&row)).await?;
        Ok(KnowledgeEntry(row))
    }

    /// Counts one use of an active knowledge entry; concurrent uses are all counted.
    async fn use_knowledge_entry(&self, ctx: &Context<'_>, id: ID) -> Result<KnowledgeEntry> {
        let (actor, id) = (ctx.writer()?, uuid(&id)?);
        let txn = ctx.begin().await?;
        let row = knowledge::use_entry(&txn, actor, id, now(ctx))
            .await
            .gql()?;
        commit(txn, "knowledge_entry", id, entry_view(&row)).await?;
        Ok(KnowledgeEntry(row))
    }
}

async fn finish_session(
    ctx: &Context<'_>,
    actor: &kernel::actor::Actor,
    id: Uuid,
    finish: Finish,
) -> Result<BrowserSession> {
    let txn = ctx.begin().await?;
    let row = browser::finish_session(&txn, actor, id, finish, now(ctx))
        .await
        .gql()?;
    commit(txn, "browser_session", id, session_view(&row)).await?;
    Ok(BrowserSession(row))
}

async fn move_project(ctx: &Context<'_>, id: ID, to: ProjectStatus) -> Result<GeneratedProject> {
    let (actor, id) = (ctx.writer()?, uuid(&id)?);
    let txn = ctx.begin().await?;
    let row = projects::move_to(&txn, actor, id, to, now(ctx))
        .await
        .gql()?;
    commit(txn, "generated_project", id, project_view(&row)).await?;
    Ok(GeneratedProject(row))
}
