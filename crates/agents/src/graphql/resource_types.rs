//! Output types, enums and inputs of browser sessions, browser contexts,
//! generated projects and knowledge entries. Outputs wrap their entity
//! models; a browser context's storage is never part of [`BrowserContext`].

use crate::browser::{self, BrowserSessionStatus as SessionStatus, IsolationLevel};
use crate::entity::{browser_context, browser_session, generated_project, knowledge_entry};
use crate::knowledge::{Category, Confidence};
use crate::projects::ProjectStatus;
use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;

macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident mirrors $src:ident, fallback $fallback:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl From<$src> for $name {
            fn from(s: $src) -> Self {
                match s {
                    $($src::$variant => Self::$variant),+
                }
            }
        }

        impl From<$name> for $src {
            fn from(s: $name) -> Self {
                match s {
                    $($name::$variant => Self::$variant),+
                }
            }
        }

        impl $name {
            /// Reads the stored form; the CHECK constraint admits only known values.
            pub fn stored(text: &str) -> Self {
                $src::parse(text).map(Self::from).unwrap_or(Self::$fallback)
            }
        }
    };
}

mirror_enum! {
    /// Where a browser session is in its life.
    BrowserSessionStatus mirrors SessionStatus, fallback Failed {
        /// Running at the provider.
        Active,
        /// Ended normally.
        Completed,
        /// Ended with an error.
        Failed,
        /// Passed its deadline while active.
        Expired,
    }
}

mirror_enum! {
    /// How strictly a browser context is kept apart.
    BrowserIsolationLevel mirrors IsolationLevel, fallback Strict {
        /// Serves one client only; never reused for another client's sessions.
        Strict,
        /// May be reused across the owner's clients.
        Shared,
    }
}

mirror_enum! {
    /// Where a generated project is in its life.
    GeneratedProjectStatus mirrors ProjectStatus, fallback Archived {
        /// In use.
        Active,
        /// Kept out of the way; can be restored or deleted.
        Archived,
        /// Deleted by its owner.
        Deleted,
    }
}

mirror_enum! {
    /// What a knowledge entry is about.
    KnowledgeCategory mirrors Category, fallback Technical {
        /// How a workflow is run.
        Workflow,
        /// How the owner's brand speaks.
        BrandVoice,
        /// A preference of the owner.
        Preference,
        /// A process the owner follows.
        Process,
        /// A technical fact.
        Technical,
    }
}

fn id(u: uuid::Uuid) -> ID {
    ID(u.to_string())
}

/// A browser session a provider ran for the caller.
pub struct BrowserSession(pub browser_session::Model);

/// A browser session a provider ran for the caller.
#[Object]
impl BrowserSession {
    /// The session id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The provider's session id.
    async fn session_id(&self) -> &str {
        &self.0.session_id
    }
    /// Where it is in its life; an active session past `expiresAt` reads `EXPIRED`.
    async fn status(&self) -> BrowserSessionStatus {
        BrowserSessionStatus::stored(&self.0.status)
    }
    /// The page it is on, or was on last.
    async fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }
    /// The provider's project id.
    async fn project_id(&self) -> Option<&str> {
        self.0.project_id.as_deref()
    }
    /// The live debugger.
    async fn debug_url(&self) -> Option<&str> {
        self.0.debug_url.as_deref()
    }
    /// The recording.
    async fn recording_url(&self) -> Option<&str> {
        self.0.recording_url.as_deref()
    }
    /// Free-form details.
    async fn metadata(&self) -> Option<Json<Value>> {
        self.0.metadata.clone().map(Json)
    }
    /// Why it failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// When the provider ends it.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// When it ended (for an expired one, its deadline).
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// When it was recorded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A persistent browser context. Its storage is sealed and shown only by `browserContextStorage`.
pub struct BrowserContext(pub browser_context::Model);

/// A persistent browser context. Its storage is sealed and shown only by `browserContextStorage`.
#[Object]
impl BrowserContext {
    /// The context id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The owner's reference for the client it serves.
    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }
    /// The provider's context id.
    async fn context_id(&self) -> &str {
        &self.0.context_id
    }
    /// How strictly it is kept apart.
    async fn isolation_level(&self) -> BrowserIsolationLevel {
        BrowserIsolationLevel::stored(&self.0.isolation_level)
    }
    /// Whether it holds sealed storage.
    async fn has_storage(&self) -> bool {
        self.0.encrypted_storage.is_some()
    }
    /// Free-form details.
    async fn metadata(&self) -> Option<Json<Value>> {
        self.0.metadata.clone().map(Json)
    }
    /// False once deactivated.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    /// Whether it can be used now: active and not past `expiresAt`.
    async fn usable(&self, ctx: &Context<'_>) -> bool {
        browser::context_usable(&self.0, super::agents(ctx).clock.now())
    }
    /// When it stops being usable.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// The last time its storage was revealed.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A browser context with its storage in plaintext.
#[derive(SimpleObject)]
pub struct BrowserContextStorage {
    /// The context, with this use stamped.
    pub context: BrowserContext,
    /// The cookies and local storage; null when it holds none.
    pub storage: Option<Json<Value>>,
}

/// A web project an agent generated.
pub struct GeneratedProject(pub generated_project::Model);

/// A web project an agent generated.
#[Object]
impl GeneratedProject {
    /// The project id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// The execution that generated it, while that run exists.
    async fn execution_id(&self) -> Option<ID> {
        self.0.execution_id.map(id)
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it is.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Its tech stack, a lowercase slug such as `react`.
    async fn tech_stack(&self) -> &str {
        &self.0.tech_stack
    }
    /// Its features.
    async fn features(&self) -> Json<Value> {
        Json(self.0.features.clone())
    }
    /// Its generated files.
    async fn files_snapshot(&self) -> Option<Json<Value>> {
        self.0.files_snapshot.clone().map(Json)
    }
    /// Where it is in its life.
    async fn status(&self) -> GeneratedProjectStatus {
        GeneratedProjectStatus::stored(&self.0.status)
    }
    /// Its dev server's port.
    async fn dev_server_port(&self) -> Option<i32> {
        self.0.dev_server_port
    }
    /// Its preview.
    async fn preview_url(&self) -> Option<&str> {
        self.0.preview_url.as_deref()
    }
    /// Its production deployment.
    async fn deployment_url(&self) -> Option<&str> {
        self.0.deployment_url.as_deref()
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Something agents learned about the owner's way of working.
pub struct KnowledgeEntry(pub knowledge_entry::Model);

/// Something agents learned about the owner's way of working.
#[Object]
impl KnowledgeEntry {
    /// The entry id.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// What it is about.
    async fn category(&self) -> KnowledgeCategory {
        KnowledgeCategory::stored(&self.0.category)
    }
    /// The situation it applies to.
    async fn context(&self) -> &str {
        &self.0.context
    }
    /// What was learned.
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// Example applications.
    async fn examples(&self) -> Option<Json<Value>> {
        self.0.examples.clone().map(Json)
    }
    /// How sure the agent is, 0 to 1 in hundredths.
    async fn confidence(&self) -> f64 {
        Confidence::from_hundredths(self.0.confidence_hundredths).as_f64()
    }
    /// How many times it was used.
    async fn usage_count(&self) -> i32 {
        self.0.usage_count
    }
    /// False once deactivated.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    /// The last time it was used.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A browser session the provider started.
#[derive(InputObject)]
pub struct RecordBrowserSessionInput {
    /// The provider's session id, 1 to 128 characters without spaces; unique on the platform.
    pub session_id: String,
    /// The page it is on, an http(s) URL.
    pub url: Option<String>,
    /// The provider's project id.
    pub project_id: Option<String>,
    /// The live debugger, an http(s) URL.
    pub debug_url: Option<String>,
    /// The recording, an http(s) URL.
    pub recording_url: Option<String>,
    /// Free-form details, a JSON object of at most 16 KiB.
    pub metadata: Option<Json<Value>>,
    /// When the provider ends it; in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A browser session that ended normally.
#[derive(InputObject)]
pub struct CompleteBrowserSessionInput {
    /// The session.
    pub id: ID,
    /// The last page, an http(s) URL.
    pub url: Option<String>,
    /// The recording, an http(s) URL.
    pub recording_url: Option<String>,
}

/// A browser session that ended with an error.
#[derive(InputObject)]
pub struct FailBrowserSessionInput {
    /// The session.
    pub id: ID,
    /// What went wrong, at most 2,000 characters.
    pub error: Option<String>,
}

/// A browser context to keep.
#[derive(InputObject)]
pub struct CreateBrowserContextInput {
    /// Your reference for the client it serves, 1 to 128 characters without spaces.
    pub client_id: Option<String>,
    /// The provider's context id, 1 to 128 characters without spaces; unique on the platform.
    pub context_id: String,
    /// How strictly it is kept apart; default `STRICT`.
    pub isolation_level: Option<BrowserIsolationLevel>,
    /// Cookies and local storage, a JSON object of at most 256 KiB; sealed at rest.
    pub storage: Option<Json<Value>>,
    /// Free-form details, a JSON object of at most 16 KiB.
    pub metadata: Option<Json<Value>>,
    /// When it stops being usable; in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

/// New storage for a usable browser context.
#[derive(InputObject)]
pub struct UpdateBrowserContextStorageInput {
    /// The context.
    pub id: ID,
    /// Cookies and local storage, a JSON object of at most 256 KiB; replaces the old storage.
    pub storage: Json<Value>,
}

/// A generated project to keep.
#[derive(InputObject)]
pub struct CreateGeneratedProjectInput {
    /// Its name, 1 to 255 characters.
    pub name: String,
    /// What it is, at most 10,000 characters.
    pub description: Option<String>,
    /// A lowercase slug of at most 50 characters (`react`, `nextjs`, `vue+vite`); default `react`.
    pub tech_stack: Option<String>,
    /// Its features, a JSON object of at most 64 KiB; default `{}`.
    pub features: Option<Json<Value>>,
    /// Its generated files, a JSON object of at most 1 MiB.
    pub files_snapshot: Option<Json<Value>>,
    /// The execution of yours that generated it.
    pub execution_id: Option<ID>,
    /// Its dev server's port, 1 to 65535.
    pub dev_server_port: Option<i32>,
    /// Its preview, an http(s) URL.
    pub preview_url: Option<String>,
    /// Its production deployment, an http(s) URL.
    pub deployment_url: Option<String>,
}

/// Changes to a generated project that is not deleted. Omit a field to keep it; null clears it.
#[derive(InputObject)]
pub struct UpdateGeneratedProjectInput {
    /// The project.
    pub id: ID,
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: MaybeUndefined<String>,
    /// A new tech stack slug.
    pub tech_stack: Option<String>,
    /// New features.
    pub features: Option<Json<Value>>,
    /// A new files snapshot.
    pub files_snapshot: MaybeUndefined<Json<Value>>,
    /// A new dev server port.
    pub dev_server_port: MaybeUndefined<i32>,
    /// A new preview URL.
    pub preview_url: MaybeUndefined<String>,
    /// A new production URL.
    pub deployment_url: MaybeUndefined<String>,
}

/// Something learned to keep.
#[derive(InputObject)]
pub struct CreateKnowledgeEntryInput {
    /// What it is about.
    pub category: KnowledgeCategory,
    /// The situation it applies to, 1 to 10,000 characters.
    pub context: String,
    /// What was learned, 1 to 50,000 characters.
    pub content: String,
    /// Example applications, a JSON array of at most 64 KiB.
    pub examples: Option<Json<Value>>,
    /// How sure the agent is: 0 to 1, at most two decimals; default 1.
    pub confidence: Option<f64>,
}

/// Changes to an active knowledge entry. Omit a field to keep it.
#[derive(InputObject)]
pub struct UpdateKnowledgeEntryInput {
    /// The entry.
    pub id: ID,
    /// A new category.
    pub category: Option<KnowledgeCategory>,
    /// A new context.
    pub context: Option<String>,
    /// New content.
    pub content: Option<String>,
    /// New examples; null clears them.
    pub examples: MaybeUndefined<Json<Value>>,
    /// A new confidence: 0 to 1, at most two decimals.
    pub confidence: Option<f64>,
}

/// `MaybeUndefined` as a patch: `None` keeps, `Some(None)` clears.
pub fn patch<T, U>(value: MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(f(v))),
    }
}
