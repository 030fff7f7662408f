//! One sea-orm entity per control-plane table.

pub mod action_approval;
pub mod agent_event;
pub mod agent_execution;
pub mod agent_session;
pub mod browser_context;
pub mod browser_session;
pub mod execution_checkpoint;
pub mod execution_control;
pub mod generated_project;
pub mod knowledge_entry;
pub mod tool_execution;
