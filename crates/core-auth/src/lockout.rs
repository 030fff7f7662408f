//! Per-email lockout: at most `lockout_threshold` sign-in attempts may be
//! verified within `lockout_window`; after that, even the right password is
//! refused until the window ends.
//!
//! The counter is one row per normalised email, bumped by a single atomic
//! upsert *before* the password is checked. Concurrent attempts each get a
//! distinct count from the database, so exactly `threshold` of them are
//! verified however many arrive at once. A success clears the row. Emails
//! with no account are counted the same way, so the answer reveals nothing.

use crate::{Auth, AuthError};
use chrono::{DateTime, Utc};
use kernel::db::raw;
use sea_orm::ConnectionTrait;

const RESERVE: &str = "INSERT INTO login_throttles (email, failures, window_started_at) VALUES (?, 1, ?) \
     ON CONFLICT (email) DO UPDATE SET \
     failures = CASE WHEN login_throttles.window_started_at <= ? THEN 1 \
                ELSE login_throttles.failures + 1 END, \
     window_started_at = CASE WHEN login_throttles.window_started_at <= ? THEN ? \
                ELSE login_throttles.window_started_at END \
     RETURNING failures, window_started_at";

impl Auth {
    /// Counts one attempt for `email` and refuses it when the window is full;
    /// returns the attempts counted in the window, this one included.
    ///
    /// Runs as its own statement, outside any transaction, so the count
    /// survives the refusal that follows a wrong password.
    ///
    /// # Errors
    /// `RATE_LIMITED` with the seconds left in the window.
    #[tracing::instrument(name = "auth.reserve_attempt", skip_all, err(level = "debug"))]
    pub async fn reserve_attempt(
        &self,
        db: &impl ConnectionTrait,
        email: &str,
    ) -> Result<i32, AuthError> {
        let now = self.clock.now();
        let cutoff = now - self.settings.lockout_window;
        let stmt = raw(
            db.get_database_backend(),
            RESERVE,
            vec![
                email.into(),
                now.into(),
                cutoff.into(),
                cutoff.into(),
                now.into(),
            ],
        );
        let row = db
            .query_one_raw(stmt)
            .await?
            .ok_or(AuthError::Db(sea_orm::DbErr::RecordNotInserted))?;
        let count: i32 = row.try_get("", "failures")?;
        let started: DateTime<Utc> = row.try_get("", "window_started_at")?;
        if count > self.settings.lockout_threshold {
            let ends = started + self.settings.lockout_window;
            let retry_after = (ends - now).num_seconds().max(1) as u64;
            return Err(AuthError::LockedOut { retry_after });
        }
        Ok(count)
    }

    /// Clears the counter after a successful sign-in.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.clear_attempts", skip_all, err(level = "debug"))]
    pub async fn clear_attempts(
        &self,
        db: &impl ConnectionTrait,
        email: &str,
    ) -> Result<(), AuthError> {
        let stmt = raw(
            db.get_database_backend(),
            "DELETE FROM login_throttles WHERE email = ?",
            vec![email.into()],
        );
        db.execute_raw(stmt).await?;
        Ok(())
    }
}
