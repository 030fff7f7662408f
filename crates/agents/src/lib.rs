//! Agents: sessions, executions and their tool calls, with the database as
//! the one control plane. Pause, resume, cancel, injected instructions and
//! approvals are rows the worker reads between steps, so a control sent to
//! any server instance reaches the run wherever it is played.

pub mod approvals;
pub mod browser;
pub mod checkpoints;
pub mod controls;
pub mod entity;
pub mod events;
pub mod executions;
pub mod expiry;
pub mod graphql;
pub mod http_runner;
pub mod knowledge;
pub mod live;
pub mod plan;
pub mod projects;
pub mod reads;
pub mod risk;
pub mod runner;
pub mod sessions;
pub mod settings;
pub mod status;
pub mod worker;

pub use controls::PauseTimeoutJob;
pub use http_runner::{HttpRunner, HttpRunnerConfig};
pub use runner::{AgentRunner, LocalRunner};
pub use settings::{AgentSettings, Agents};
pub use worker::AgentWorker;
