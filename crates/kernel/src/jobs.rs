//! Background jobs: named work that runs on an interval until shutdown.
//!
//! A [`Job`] is one unit of periodic work (roll billing periods over, release
//! stale reservations). [`Jobs`] runs each registered job on its own tokio
//! task: every tick runs the job once inside a `job` tracing span; an error is
//! logged and the job simply runs again at the next tick (jobs must therefore
//! be idempotent). [`Jobs::shutdown`] stops the timers and waits for a run in
//! progress to finish, so a job is never cut off half way by our own shutdown.
//!
//! Several server instances may run the same job at once: correctness comes
//! from the job's own conditional writes, not from a lock here. Tests call
//! [`run_once`] instead of waiting for a tick.

use crate::Error;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// One unit of periodic work.
#[async_trait::async_trait]
pub trait Job: Send + Sync + 'static {
    /// A stable name for logs and spans (`billing.period_rollover`).
    fn name(&self) -> &'static str;

    /// Does the work once.
    ///
    /// # Errors
    /// Any failure; the runner logs it and tries again at the next tick.
    async fn run(&self) -> Result<(), Error>;
}

/// Runs `job` once under its tracing span and logs the outcome; what a tick does.
///
/// # Errors
/// The job's error, after it has been logged.
pub async fn run_once(job: &dyn Job) -> Result<(), Error> {
    let span = tracing::info_span!("job", name = job.name());
    async {
        let started = std::time::Instant::now();
        let result = job.run().await;
        match &result {
            Ok(()) => tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "job ran"),
            Err(err) => tracing::warn!(error = %err, "job failed; retrying at the next tick"),
        }
        result
    }
    .instrument(span)
    .await
}

/// The running jobs of a process and the switch that stops them.
#[derive(Debug)]
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    /// No jobs yet.
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Runs `job` now and then every `every` until [`Jobs::shutdown`]. A tick
    /// that falls while a run is still going is skipped, not queued.
    pub fn every(&mut self, every: Duration, job: Arc<dyn Job>) {
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|stopped| *stopped) => break,
                }
                // The error is logged by run_once; the next tick is the retry.
                let _ = run_once(job.as_ref()).await;
            }
            tracing::info!(name = job.name(), "job stopped");
        }));
    }

    /// How many jobs are registered.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when no job is registered.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stops every job after its current run, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        runs: AtomicUsize,
        fail_first: bool,
    }

    #[async_trait::async_trait]
    impl Job for Counting {
        fn name(&self) -> &'static str {
            "test.counting"
        }

        async fn run(&self) -> Result<(), Error> {
            let n = self.runs.fetch_add(1, Ordering::SeqCst);
            if self.fail_first && n == 0 {
                return Err(Error::LimitExceeded("first run fails".into()));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn run_once_returns_the_jobs_error() {
        let job = Counting {
            runs: AtomicUsize::new(0),
            fail_first: true,
        };
        assert!(run_once(&job).await.is_err());
        assert!(run_once(&job).await.is_ok());
        assert_eq!(job.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failing_job_runs_again_at_the_next_tick_and_stops_on_shutdown() {
        let job = Arc::new(Counting {
            runs: AtomicUsize::new(0),
            fail_first: true,
        });
        let mut jobs = Jobs::new();
        jobs.every(Duration::from_millis(20), job.clone());
        assert_eq!(jobs.len(), 1);
        tokio::time::sleep(Duration::from_millis(110)).await;
        jobs.shutdown().await;
        let runs = job.runs.load(Ordering::SeqCst);
        assert!(runs >= 3, "kept running after the first failure: {runs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            job.runs.load(Ordering::SeqCst),
            runs,
            "no run after shutdown"
        );
    }
}
