//! What the forwarder counts for each backend task: connections, failures
//! and bytes, kept across reads of the swarm for as long as the task is a
//! backend; and which backends failed just now, so that the next
//! connections try them last instead of waiting on them again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::forwarder_container::BackendStatus;

/// How long a backend that failed a connection is tried last: a few reads
/// of the swarm, by when a task that is gone has left the backends.
const HOLD_OFF: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections: AtomicU64,
    failures: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    failed_at: Mutex<Option<Instant>>,
}

impl Counters {
    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.failed_at.lock().expect("counters lock") = Some(Instant::now());
    }

    /// Bytes relayed: to the backend (in) and from it (out).
    pub(crate) fn moved(&self, to_backend: u64, from_backend: u64) {
        self.bytes_in.fetch_add(to_backend, Ordering::Relaxed);
        self.bytes_out.fetch_add(from_backend, Ordering::Relaxed);
    }

    /// Whether a connection to it failed within [`HOLD_OFF`].
    pub(crate) fn suspect(&self) -> bool {
        self.failed_at
            .lock()
            .expect("counters lock")
            .is_some_and(|at| at.elapsed() < HOLD_OFF)
    }

    pub(crate) fn fill(&self, status: &mut BackendStatus) {
        status.connections = self.connections.load(Ordering::Relaxed);
        status.failures = self.failures.load(Ordering::Relaxed);
        status.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        status.bytes_out = self.bytes_out.load(Ordering::Relaxed);
    }
}

/// Every backend's counters, by task and address (a task's slot comes back
/// elsewhere under the same name).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Each backend's counters and when a read of the swarm last had it.
    by_backend: HashMap<(String, String), (Arc<Counters>, Instant)>,
}

/// How long a backend missing from the swarm's reads keeps its counts: a
/// busy swarm (a node crashing, another coming back) can leave tasks out of
/// a read or two, and their counts must not start again from nothing.
const FORGET_AFTER: Duration = Duration::from_secs(10);

impl Ledger {
    pub(crate) fn counters(&mut self, backend: &BackendStatus) -> Arc<Counters> {
        self.by_backend
            .entry((backend.task.clone(), backend.address.clone()))
            .or_insert_with(|| (Arc::default(), Instant::now()))
            .0
            .clone()
    }

    /// Notes the backends of a read made at `now`, and forgets those no
    /// read has had for [`FORGET_AFTER`].
    pub(crate) fn keep_only<'a>(&mut self, current: impl IntoIterator<Item = &'a BackendStatus>, now: Instant) {
        for backend in current {
            if let Some((_, seen)) = self
                .by_backend
                .get_mut(&(backend.task.clone(), backend.address.clone()))
            {
                *seen = now;
            }
        }
        self.by_backend
            .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < FORGET_AFTER);
    }
}

/// The order to try `count` backends in for a connection whose turn is
/// `first`: round robin, with those that failed just now last.
pub(crate) fn attempt_order(count: usize, first: usize, suspect: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).map(|k| (first + k) % count).collect();
    // A stable sort keeps the round robin within each group.
    order.sort_by_key(|&i| suspect(i));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(task: &str, address: &str) -> BackendStatus {
        BackendStatus {
            task: task.into(),
            node: "worker-1".into(),
            address: address.into(),
            ..Default::default()
        }
    }

    #[test]
    fn counters_last_as_long_as_their_backend() {
        let mut ledger = Ledger::default();
        let web1 = status("web.1", "10.0.0.5:8080");
        ledger.counters(&web1).connected();
        ledger.counters(&web1).moved(100, 2000);
        ledger.counters(&web1).failed();
        let mut seen = web1.clone();
        ledger.counters(&web1).fill(&mut seen);
        assert_eq!(
            (seen.connections, seen.failures, seen.bytes_in, seen.bytes_out),
            (1, 1, 100, 2000)
        );
        assert!(ledger.counters(&web1).suspect(), "it failed just now");
        // The same slot elsewhere is another backend.
        let moved = status("web.1", "10.0.0.9:8080");
        let mut fresh = moved.clone();
        ledger.counters(&moved).fill(&mut fresh);
        assert_eq!(fresh.connections, 0);
        // Missing from one read of a busy swarm, it keeps its counts.
        let now = Instant::now();
        ledger.keep_only([&moved], now + Duration::from_secs(2));
        let mut kept = web1.clone();
        ledger.counters(&web1).fill(&mut kept);
        assert_eq!(kept.connections, 1, "kept through a read without it");
        ledger.keep_only([&moved], now + FORGET_AFTER + Duration::from_secs(1));
        let mut again = web1.clone();
        ledger.counters(&web1).fill(&mut again);
        assert_eq!(again.connections, 0, "forgotten once no read had it for a while");
    }

    #[test]
    fn backends_that_failed_just_now_are_tried_last() {
        assert_eq!(attempt_order(4, 1, |_| false), [1, 2, 3, 0]);
        assert_eq!(attempt_order(4, 1, |i| i == 2), [1, 3, 0, 2]);
        assert_eq!(attempt_order(3, 5, |i| i != 0), [0, 2, 1]);
        assert!(attempt_order(0, 3, |_| false).is_empty());
    }
}
