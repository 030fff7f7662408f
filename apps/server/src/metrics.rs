//! Prometheus text metrics: GraphQL operations by name and outcome, with a
//! latency histogram, and database pool use.
//!
//! Operation names come from clients, so labels are bounded: names must look
//! like GraphQL names, and past `MAX_OPERATIONS` distinct names new ones are
//! counted as `other`.

use sea_orm::{DatabaseConnection, DbBackend};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const MAX_OPERATIONS: usize = 200;

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters shared by every worker.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, &'static str), Series>>,
}

/// The label a client-supplied operation name is counted under.
fn label(operation: Option<&str>) -> String {
    match operation {
        None => "anonymous".to_owned(),
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            name.to_owned()
        }
        Some(_) => "invalid".to_owned(),
    }
}

impl Metrics {
    /// Records one executed operation.
    pub fn observe(&self, operation: Option<&str>, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut name = label(operation);
        let known = series.keys().any(|(n, _)| *n == name);
        if !known && series.len() >= MAX_OPERATIONS {
            name = "other".to_owned();
        }
        let s = series.entry((name, outcome)).or_default();
        let secs = elapsed.as_secs_f64();
        s.count += 1;
        s.sum_seconds += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    /// The exposition text.
    pub fn render(&self, db: &DatabaseConnection) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = String::new();
        out.push_str("# HELP graphql_requests_total GraphQL operations executed.\n");
        out.push_str("# TYPE graphql_requests_total counter\n");
        for ((op, outcome), s) in &series {
            let _ = writeln!(
                out,
                "graphql_requests_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP graphql_request_duration_seconds GraphQL operation latency.\n");
        out.push_str("# TYPE graphql_request_duration_seconds histogram\n");
        for ((op, outcome), s) in &series {
            let labels = format!("operation=\"{op}\",outcome=\"{outcome}\"");
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "graphql_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "graphql_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "graphql_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "graphql_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        let (size, idle) = pool_use(db);
        out.push_str("# HELP db_pool_connections Open database connections.\n");
        out.push_str("# TYPE db_pool_connections gauge\n");
        let _ = writeln!(out, "db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(
            out,
            "db_pool_connections{{state=\"in_use\"}} {}",
            size.saturating_sub(idle)
        );
        out
    }
}

fn pool_use(db: &DatabaseConnection) -> (u32, u32) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_cannot_inject_labels_or_grow_without_bound() {
        let m = Metrics::default();
        m.observe(Some("Me"), true, Duration::from_millis(3));
        m.observe(Some("x\"} 1\nevil{a=\""), true, Duration::from_millis(3));
        for i in 0..500 {
            m.observe(Some(&format!("Op{i}")), true, Duration::from_millis(1));
        }
        let series = m.series.lock().unwrap();
        assert!(series.contains_key(&("Me".into(), "ok")));
        assert!(series.contains_key(&("invalid".into(), "ok")));
        assert!(series.contains_key(&("other".into(), "ok")));
        assert!(series.len() <= MAX_OPERATIONS + 1);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe(None, false, Duration::from_millis(30));
        let series = m.series.lock().unwrap();
        let s = &series[&("anonymous".into(), "error")];
        assert_eq!(s.buckets, [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    }
}
