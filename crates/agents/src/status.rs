//! The closed status sets of the control plane and the one transition
//! function each: every status write goes through these, so an illegal move
//! is refused (`INVALID_TRANSITION`) before any SQL runs.
//!
//! ```text
//! execution:  pending -> planning -> executing -> completed
//!                |          |           |------> failed
//!                |          |           '------> cancelled
//!                '----------'--> failed | cancelled
//! control:    running <-> paused, running -> awaiting_approval -> running,
//!             awaiting_approval -> paused, any non-final -> cancelled (final)
//! approval:   pending -> approved | rejected | expired (all final)
//! ```

use kernel::Error;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Parses the stored form.
            ///
            /// # Errors
            /// Internal, for text the database CHECK constraint should have refused.
            pub fn parse(text: &str) -> Result<Self, Error> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(Error::Internal(
                        format!(concat!("unknown ", stringify!($name), " {:?}"), other).into(),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Where an execution is in its life.
    ExecutionStatus {
        /// Created, its execution reserved; waiting for a worker.
        Pending = "pending",
        /// A worker is asking the runner for a plan.
        Planning = "planning",
        /// Steps are being played.
        Executing = "executing",
        /// Finished with a result (final).
        Completed = "completed",
        /// Stopped with an error (final).
        Failed = "failed",
        /// Stopped by its owner (final).
        Cancelled = "cancelled",
    }
}

impl ExecutionStatus {
    /// True for the three final statuses.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// The only way a status changes.
    ///
    /// # Errors
    /// `INVALID_TRANSITION` naming both statuses when `self -> to` is not allowed.
    pub fn transition(self, to: Self) -> Result<Self, Error> {
        use ExecutionStatus::*;
        let allowed = matches!(
            (self, to),
            (Pending, Planning | Failed | Cancelled)
                | (Planning, Executing | Failed | Cancelled)
                | (Executing, Completed | Failed | Cancelled)
        );
        if allowed {
            Ok(to)
        } else {
            Err(Error::InvalidTransition(format!(
                "an execution cannot move from {self} to {to}"
            )))
        }
    }
}

text_enum! {
    /// What the owner asked of a run (`execution_controls.control_state`).
    ControlState {
        /// The worker may play the next step.
        Running = "running",
        /// Held by the owner until resumed (or the pause times out).
        Paused = "paused",
        /// Stopped for good.
        Cancelled = "cancelled",
        /// Held until a human answers an approval.
        AwaitingApproval = "awaiting_approval",
    }
}

impl ControlState {
    /// The only way a control state changes.
    ///
    /// # Errors
    /// `INVALID_TRANSITION` when `self -> to` is not allowed: nothing leaves
    /// `cancelled`, only `paused` and `awaiting_approval` resume, and a run
    /// waits for approval only while running.
    pub fn transition(self, to: Self) -> Result<Self, Error> {
        use ControlState::*;
        let allowed = matches!(
            (self, to),
            (Running, Paused | AwaitingApproval | Cancelled)
                | (Paused, Running | Cancelled)
                | (AwaitingApproval, Running | Paused | Cancelled)
        );
        if allowed {
            Ok(to)
        } else {
            Err(Error::InvalidTransition(format!(
                "an execution's control cannot move from {self} to {to}"
            )))
        }
    }
}

text_enum! {
    /// The answer to an approval.
    ApprovalStatus {
        /// Waiting for a human or the expiry job.
        Pending = "pending",
        /// Approved by a human, by the low-risk rule, or by an `approve` timeout.
        Approved = "approved",
        /// Rejected by a human.
        Rejected = "rejected",
        /// Expired with a `reject` timeout action.
        Expired = "expired",
    }
}

impl ApprovalStatus {
    /// The only way an approval's status changes: once, out of `pending`.
    ///
    /// # Errors
    /// `INVALID_TRANSITION` for any move out of a final status.
    pub fn transition(self, to: Self) -> Result<Self, Error> {
        if self == Self::Pending && to != Self::Pending {
            Ok(to)
        } else {
            Err(Error::InvalidTransition(format!(
                "an approval cannot move from {self} to {to}"
            )))
        }
    }
}

text_enum! {
    /// How dangerous an action is, lowest first.
    RiskLevel {
        /// Approved automatically.
        Low = "low",
        /// Needs a human.
        Medium = "medium",
        /// Needs a human: deletes, purchases, sends, shell commands.
        High = "high",
        /// Needs a human: destructive patterns such as dropping tables.
        Critical = "critical",
    }
}

text_enum! {
    /// What the expiry job does with an unanswered approval.
    TimeoutAction {
        /// Expire it; the run fails.
        Reject = "reject",
        /// Approve it; the run goes on.
        Approve = "approve",
    }
}

text_enum! {
    /// Why a checkpoint was written.
    CheckpointReason {
        /// A step failed.
        Error = "error",
        /// The owner asked for one.
        Manual = "manual",
        /// A phase finished.
        PhaseComplete = "phase_complete",
        /// A pause outlived its timeout.
        PauseTimeout = "pause_timeout",
    }
}

text_enum! {
    /// A session's state, following its latest execution.
    SessionStatus {
        /// No run in progress.
        Idle = "idle",
        /// A run is planning.
        Planning = "planning",
        /// A run is executing.
        Executing = "executing",
        /// The latest run completed.
        Complete = "complete",
        /// The latest run failed.
        Error = "error",
        /// The latest run is paused or waiting for approval.
        Paused = "paused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_form_round_trips() {
        for s in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(s.as_str()).unwrap(), *s);
        }
        for s in ControlState::ALL {
            assert_eq!(ControlState::parse(s.as_str()).unwrap(), *s);
        }
        assert!(ExecutionStatus::parse("running").is_err());
    }

    #[test]
    fn executions_move_only_forward_and_final_states_are_final() {
        use ExecutionStatus::*;
        assert!(Pending.transition(Planning).is_ok());
        assert!(Planning.transition(Executing).is_ok());
        assert!(Executing.transition(Completed).is_ok());
        assert!(
            Pending.transition(Executing).is_err(),
            "no skipping planning"
        );
        assert!(Pending.transition(Completed).is_err());
        for done in [Completed, Failed, Cancelled] {
            for to in ExecutionStatus::ALL {
                let err = done.transition(*to).unwrap_err();
                assert_eq!(err.code(), kernel::error::Code::InvalidTransition);
            }
        }
    }

    #[test]
    fn cancel_is_final_and_resume_needs_a_held_run() {
        use ControlState::*;
        for to in ControlState::ALL {
            assert!(Cancelled.transition(*to).is_err());
        }
        assert!(
            Running.transition(Running).is_err(),
            "resume of a running run"
        );
        assert!(Paused.transition(Running).is_ok());
        assert!(AwaitingApproval.transition(Running).is_ok());
        assert!(Paused.transition(AwaitingApproval).is_err());
    }

    #[test]
    fn approvals_are_answered_once() {
        use ApprovalStatus::*;
        assert!(Pending.transition(Approved).is_ok());
        assert!(Expired.transition(Approved).is_err());
        assert!(Approved.transition(Rejected).is_err());
    }
}
