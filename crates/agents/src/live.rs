//! Live progress: streams over the events log and the pending approvals,
//! fed by polling the database.
//!
//! Every change of a run is a committed row in `agent_events`, numbered per
//! run without gaps (see [`crate::events`]), so a poller that asks for
//! `seq > last` on any server instance sees every event once and in order,
//! whichever instance wrote it. A poll borrows a pooled connection for one
//! indexed query and gives it back; between polls a stream holds only the
//! pool handle and a timer. Streams spawn no task: dropping one (the client
//! left) stops its polling.

use crate::entity::{action_approval, agent_event, agent_execution};
use crate::events::EventKind;
use crate::executions;
use crate::status::{ApprovalStatus, ExecutionStatus};
use futures_util::{Stream, StreamExt, stream};
use kernel::Error;
use kernel::actor::Actor;
use kernel::clock::SharedClock;
use kernel::id::parse_id;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::time::Duration;
use uuid::Uuid;

/// The most events one poll (or one `executionEventLog` page) returns; a
/// full batch is followed by the next poll at once, without waiting.
pub const BATCH: u64 = 100;

/// After this many empty polls in a row, a stream also reads its run's row:
/// a run made final without a final `status_changed` event still ends its
/// streams (5 s at the default interval).
pub const RECHECK_AFTER_IDLE_POLLS: u32 = 20;

/// The most pending approvals one `pendingApprovals` emission lists, oldest
/// first. A run waits on one approval at a time and running agents are capped
/// by the plan, so a real list is far shorter; the cap bounds a bug.
pub const MAX_PENDING: u64 = 100;

/// Where a run's events start: after `after_seq` (0 = from the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsFrom {
    execution_id: Uuid,
    after_seq: i64,
}

impl EventsFrom {
    /// Parses a request.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `executionId` when it is not an id, or on
    /// `afterSeq` when it is negative.
    pub fn parse(execution_id: &str, after_seq: Option<i32>) -> Result<Self, Error> {
        let execution_id = parse_id(execution_id, "executionId")?;
        let after_seq = after_seq.unwrap_or(0);
        if after_seq < 0 {
            return Err(Error::bad_input("afterSeq", "must be 0 or more"));
        }
        Ok(Self {
            execution_id,
            after_seq: i64::from(after_seq),
        })
    }

    /// The run.
    pub fn execution_id(&self) -> Uuid {
        self.execution_id
    }
}

/// How many events a catch-up page returns, 1 to [`BATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimit(u64);

impl LogLimit {
    /// Parses `first` (default [`BATCH`]).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `first` outside 1 to [`BATCH`].
    pub fn parse(first: Option<i32>) -> Result<Self, Error> {
        match first {
            None => Ok(Self(BATCH)),
            Some(n) if (1..=BATCH as i32).contains(&n) => Ok(Self(n as u64)),
            Some(_) => Err(Error::bad_input(
                "first",
                format!("must be between 1 and {BATCH}"),
            )),
        }
    }
}

/// The caller's run's events after `from`, oldest first: the catch-up read a
/// client makes before (or instead of) subscribing.
///
/// # Errors
/// `NOT_FOUND` when the run is not the caller's; internal on database failure.
pub async fn log(
    db: &impl ConnectionTrait,
    actor: &Actor,
    from: EventsFrom,
    limit: LogLimit,
) -> Result<Vec<agent_event::Model>, Error> {
    executions::own(db, actor, from.execution_id).await?;
    page(
        db,
        actor.user_id,
        from.execution_id,
        from.after_seq,
        limit.0,
    )
    .await
}

/// The caller's run's events after `from`, as they are committed, polled every
/// `poll`. The stream ends once the run is final and every event up to and
/// including its final status change (and the rest of that transaction) has
/// been yielded; a database failure is yielded once and ends it, and the
/// client resumes with `afterSeq`.
///
/// # Errors
/// `NOT_FOUND` when the run is not the caller's (checked once, here); internal
/// on database failure.
pub async fn execution_events(
    db: DatabaseConnection,
    actor: &Actor,
    from: EventsFrom,
    poll: Duration,
) -> Result<impl Stream<Item = Result<agent_event::Model, Error>> + Send + use<>, Error> {
    let run = executions::own(&db, actor, from.execution_id).await?;
    // Read before the first poll: every event of the transaction that made the
    // run final is then visible to that poll.
    let already_final = is_final(&run);
    let poller = EventPoller {
        db,
        user_id: actor.user_id,
        execution_id: from.execution_id,
        last: from.after_seq,
        poll,
        final_seen: already_final,
        idle_polls: 0,
        wait: false,
        done: false,
    };
    Ok(stream::unfold(poller, |mut p| async move {
        p.next_batch().await.map(|batch| (batch, p))
    })
    .flat_map(|batch| {
        stream::iter(match batch {
            Ok(events) => events.into_iter().map(Ok).collect(),
            Err(err) => vec![Err(err)],
        })
    }))
}

/// The state of one run's event stream between polls.
struct EventPoller {
    db: DatabaseConnection,
    user_id: Uuid,
    execution_id: Uuid,
    last: i64,
    poll: Duration,
    final_seen: bool,
    idle_polls: u32,
    wait: bool,
    done: bool,
}

impl EventPoller {
    /// The next non-empty batch; `None` once the stream is over.
    async fn next_batch(&mut self) -> Option<Result<Vec<agent_event::Model>, Error>> {
        while !self.done {
            if self.wait {
                tokio::time::sleep(self.poll).await;
            }
            match self.poll_once().await {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => return Some(Ok(batch)),
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        None
    }

    async fn poll_once(&mut self) -> Result<Vec<agent_event::Model>, Error> {
        if !self.final_seen && self.idle_polls >= RECHECK_AFTER_IDLE_POLLS {
            // A safety net for a run made final without its event: read the
            // row before the page, so the page holds every event it committed.
            self.idle_polls = 0;
            let run = agent_execution::Entity::find_by_id(self.execution_id)
                .one(&self.db)
                .await?;
            self.final_seen = run.as_ref().is_none_or(is_final);
        }
        let batch = page(&self.db, self.user_id, self.execution_id, self.last, BATCH).await?;
        let full = batch.len() as u64 == BATCH;
        if let Some(event) = batch.last() {
            self.last = event.seq;
        }
        self.final_seen |= batch.iter().any(is_final_status_change);
        self.idle_polls = if batch.is_empty() {
            self.idle_polls + 1
        } else {
            0
        };
        // One statement sees one snapshot: a short batch after the final
        // status change holds every event its transaction wrote.
        self.done = self.final_seen && !full;
        self.wait = !full;
        Ok(batch)
    }
}

/// One indexed range read of `agent_events (execution_id, seq)`.
async fn page(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    execution_id: Uuid,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<agent_event::Model>, Error> {
    Ok(agent_event::Entity::find()
        .filter(agent_event::Column::ExecutionId.eq(execution_id))
        .filter(agent_event::Column::Seq.gt(after_seq))
        // Ownership was checked at subscribe time; the rows carry their owner
        // too, so a stream can never yield another user's event.
        .filter(agent_event::Column::UserId.eq(user_id))
        .order_by_asc(agent_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

fn is_final(run: &agent_execution::Model) -> bool {
    ExecutionStatus::parse(&run.status).is_ok_and(ExecutionStatus::is_final)
}

/// A `status_changed` event whose `to` is completed, failed or cancelled.
fn is_final_status_change(event: &agent_event::Model) -> bool {
    EventKind::parse(&event.kind) == Some(EventKind::StatusChanged)
        && event.payload["to"]
            .as_str()
            .and_then(|to| ExecutionStatus::parse(to).ok())
            .is_some_and(ExecutionStatus::is_final)
}

/// The caller's pending approvals that have not expired, oldest first.
///
/// # Errors
/// Internal on database failure.
pub async fn pending(
    db: &impl ConnectionTrait,
    actor: &Actor,
    clock: &SharedClock,
) -> Result<Vec<action_approval::Model>, Error> {
    Ok(action_approval::Entity::find()
        .filter(action_approval::Column::UserId.eq(actor.user_id))
        .filter(action_approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
        .filter(action_approval::Column::ExpiresAt.gt(clock.now()))
        .order_by_asc(action_approval::Column::CreatedAt)
        .order_by_asc(action_approval::Column::Id)
        .limit(MAX_PENDING)
        .all(db)
        .await?)
}

/// The caller's pending approvals ([`pending`]): once at once, then again
/// whenever the set changes (one added, answered, or expired), compared by ids
/// and statuses every `poll`. The stream does not end by itself; a database
/// failure is yielded once and ends it.
pub fn pending_approvals(
    db: DatabaseConnection,
    actor: &Actor,
    clock: SharedClock,
    poll: Duration,
) -> impl Stream<Item = Result<Vec<action_approval::Model>, Error>> + Send + use<> {
    let poller = ApprovalPoller {
        db,
        actor: actor.clone(),
        clock,
        poll,
        shown: None,
        done: false,
    };
    stream::unfold(poller, |mut p| async move {
        p.next_change().await.map(|set| (set, p))
    })
}

/// The state of one pending-approvals stream between polls.
struct ApprovalPoller {
    db: DatabaseConnection,
    actor: Actor,
    clock: SharedClock,
    poll: Duration,
    /// What the client was last sent; `None` before the first emission.
    shown: Option<Vec<(Uuid, String)>>,
    done: bool,
}

impl ApprovalPoller {
    async fn next_change(&mut self) -> Option<Result<Vec<action_approval::Model>, Error>> {
        loop {
            if self.done {
                return None;
            }
            if self.shown.is_some() {
                tokio::time::sleep(self.poll).await;
            }
            let set = match pending(&self.db, &self.actor, &self.clock).await {
                Ok(set) => set,
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            };
            let key: Vec<(Uuid, String)> = set.iter().map(|a| (a.id, a.status.clone())).collect();
            if self.shown.as_ref() != Some(&key) {
                self.shown = Some(key);
                return Some(Ok(set));
            }
        }
    }
}
