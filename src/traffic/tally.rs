//! What a run of requests amounts to: answers per replica, latencies,
//! failures with their times and reasons, the longest stretch without an
//! answer. Pure bookkeeping, fed by the runner; no I/O here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// One replica's answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Replica {
    pub answers: u64,
    /// Seconds from the start to its first and last answer.
    pub first: f64,
    pub last: f64,
}

/// One request that got no answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Seconds from the start to when it was sent.
    pub at: f64,
    pub reason: String,
}

/// The run so far, or in the end.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub seconds: f64,
    pub requests: u64,
    pub answered: u64,
    pub failed: u64,
    pub per_replica: BTreeMap<String, Replica>,
    /// Latency of answered requests, milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub failures: Vec<Failure>,
    /// Failures by reason, for a glance.
    pub reasons: BTreeMap<String, u64>,
    /// The longest time without an answer, seconds: from the start (or an
    /// answer) to the next answer (or the end).
    pub longest_gap: f64,
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    summary: Summary,
    latencies_ms: Vec<f64>,
    /// When the latest answer arrived, seconds from the start.
    last_answer: f64,
}

impl Tally {
    /// A request sent `at` (from the start) that took `latency` and was
    /// answered by `replica`, or failed for `reason`.
    pub(crate) fn record(&mut self, at: Duration, latency: Duration, outcome: Result<String, String>) {
        let s = &mut self.summary;
        s.requests += 1;
        let sent = at.as_secs_f64();
        match outcome {
            Ok(replica) => {
                let done = sent + latency.as_secs_f64();
                s.answered += 1;
                self.latencies_ms.push(latency.as_secs_f64() * 1000.0);
                let entry = s.per_replica.entry(replica).or_insert(Replica {
                    answers: 0,
                    first: done,
                    last: done,
                });
                entry.answers += 1;
                entry.first = entry.first.min(done);
                entry.last = entry.last.max(done);
                // Answers may arrive out of order; a gap ends at the first
                // answer after it.
                if done > self.last_answer {
                    s.longest_gap = s.longest_gap.max(done - self.last_answer);
                    self.last_answer = done;
                }
            }
            Err(reason) => {
                s.failed += 1;
                *s.reasons.entry(reason.clone()).or_insert(0) += 1;
                s.failures.push(Failure { at: sent, reason });
            }
        }
    }

    /// The summary as of `now` (from the start).
    pub(crate) fn summary(&self, now: Duration) -> Summary {
        let mut summary = self.summary.clone();
        summary.seconds = now.as_secs_f64();
        summary.longest_gap = summary.longest_gap.max(summary.seconds - self.last_answer);
        summary.failures.sort_by(|a, b| a.at.total_cmp(&b.at));
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        summary.p50_ms = percentile(&sorted, 50.0);
        summary.p99_ms = percentile(&sorted, 99.0);
        summary
    }
}

/// The nearest-rank percentile of sorted values; 0 for none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Who answered, from an answer's body: the `ipAddress` or `hostname` of a
/// JSON body (the demo service and most echo services say one), else None.
pub(crate) fn replica_of(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    ["ipAddress", "hostname", "host"]
        .iter()
        .find_map(|key| json.get(key)?.as_str().map(str::to_string))
        .filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn answers_per_replica_add_up_and_failures_keep_their_times() {
        let mut tally = Tally::default();
        tally.record(ms(0), ms(10), Ok("a/10.0.0.5".into()));
        tally.record(ms(100), ms(20), Ok("b/10.0.0.6".into()));
        tally.record(ms(200), ms(2000), Err("timed out".into()));
        tally.record(ms(300), ms(1), Err("connection refused".into()));
        tally.record(ms(400), ms(1), Err("connection refused".into()));
        tally.record(ms(3000), ms(30), Ok("a/10.0.0.5".into()));
        let s = tally.summary(ms(4000));
        assert_eq!((s.requests, s.answered, s.failed), (6, 3, 3));
        assert_eq!(s.per_replica.values().map(|r| r.answers).sum::<u64>(), s.answered);
        assert_eq!(s.per_replica["a/10.0.0.5"].answers, 2);
        assert!((s.per_replica["a/10.0.0.5"].last - 3.03).abs() < 1e-9);
        assert_eq!(s.reasons["connection refused"], 2);
        assert_eq!(s.failures.iter().map(|f| f.at).collect::<Vec<_>>(), [0.2, 0.3, 0.4]);
        // From b's answer at 0.12 s to a's at 3.03 s.
        assert!((s.longest_gap - 2.91).abs() < 1e-9, "{}", s.longest_gap);
        assert_eq!((s.p50_ms, s.p99_ms), (20.0, 30.0));
    }

    #[test]
    fn silence_until_the_end_counts_as_a_gap() {
        let mut tally = Tally::default();
        tally.record(ms(0), ms(5), Ok("a".into()));
        let s = tally.summary(ms(10_000));
        assert!((s.longest_gap - 9.995).abs() < 1e-9);
        assert_eq!(Tally::default().summary(ms(2000)).longest_gap, 2.0);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn the_replica_is_read_from_a_json_answer() {
        assert_eq!(
            replica_of("{\"ipAddress\":\"3f2a/10.0.1.7\",\"quote\":\"q\"}\n").as_deref(),
            Some("3f2a/10.0.1.7")
        );
        assert_eq!(replica_of("{\"hostname\":\"web-1\"}").as_deref(), Some("web-1"));
        assert_eq!(replica_of("hello"), None);
        assert_eq!(replica_of("{\"ipAddress\":\"\"}"), None);
    }
}
