//! After a large create: waiting until the nodes' gossip has settled.
//!
//! Nodes that join a swarm together then spread their overlay networks'
//! state to one another (the member list and its tables, every node to
//! every other): at 1 + 100 on two cores that keeps both cores busy for
//! 20-50 s after every node is Ready (engine 28.5; 20.10 takes minutes).
//! A cluster handed over in that state measures failures wrong (detection
//! and rescheduling wait for CPU), so create waits, a bounded time, until
//! a few workers' engines are quiet.

use std::time::Duration;

use tokio::time::Instant;

use crate::engine::HostEngine;
use crate::stats::StatsFeed;

/// Sampled workers using less than this on average, in % of one core, are
/// quiet. A settled worker uses 0.2-0.5 (engine 28.5, 1 + 100), one still
/// gossiping 1-3 at 1 + 100 (the machine's two cores shared out), 5-7 at
/// 1 + 30.
const QUIET_PERCENT: f64 = 0.8;
/// Less than this is no figure: a stats stream's first sample says 0, as it
/// has no earlier one to compare with.
const NO_FIGURE_PERCENT: f64 = 0.01;
/// How many consecutive readings, [`READ_EVERY`] apart, are averaged: one
/// reading covers a second, which can fall between two bursts, or on a
/// worker's periodic full sync with another; and the gossip at 1 + 100
/// can pause for a few seconds and come back.
const QUIET_READINGS: usize = 5;
const READ_EVERY: Duration = Duration::from_secs(2);
/// How many workers are sampled: gossip reaches every node alike.
const SAMPLED: usize = 3;

/// What the wait found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Settled {
    /// Quiet after this long.
    After(Duration),
    /// Still busy when the wait ran out.
    StillBusy,
    /// No figures came (an engine without cgroup figures, e.g. rootless
    /// without delegation): nothing to wait for.
    Unmeasured,
}

/// Waits at most `limit` until the sampled `workers` (container names)
/// are quiet.
pub(super) async fn wait(engine: &HostEngine, workers: &[String], limit: Duration) -> Settled {
    let sampled = sample(workers);
    let mut feed = StatsFeed::default();
    feed.track(&engine.docker, &sampled);
    let started = Instant::now();
    let mut readings = Readings::default();
    loop {
        tokio::time::sleep(READ_EVERY).await;
        let figures: Vec<f64> = sampled
            .iter()
            .filter_map(|c| feed.get(c).map(|u| u.cpu_percent))
            .collect();
        if readings.push(&figures, sampled.len()) {
            return Settled::After(started.elapsed());
        }
        if started.elapsed() >= limit {
            return if readings.seen_any {
                Settled::StillBusy
            } else {
                Settled::Unmeasured
            };
        }
    }
}

/// Spread over the list: the first, the middle and the last.
fn sample(workers: &[String]) -> Vec<String> {
    let (n, k) = (workers.len(), SAMPLED.min(workers.len()));
    (0..k).map(|i| workers[i * (n - 1) / (k - 1).max(1)].clone()).collect()
}

/// The last readings: each the sampled workers' mean CPU, where every
/// sampled worker had a figure.
#[derive(Debug, Default)]
struct Readings {
    last: std::collections::VecDeque<f64>,
    seen_any: bool,
}

impl Readings {
    /// Takes one reading (a figure per sampled worker that has one); true
    /// once the last [`QUIET_READINGS`] complete ones average under
    /// [`QUIET_PERCENT`].
    fn push(&mut self, figures: &[f64], sampled: usize) -> bool {
        let figures: Vec<f64> = figures
            .iter()
            .copied()
            .filter(|cpu| *cpu >= NO_FIGURE_PERCENT)
            .collect();
        self.seen_any |= !figures.is_empty();
        if figures.len() < sampled || sampled == 0 {
            self.last.clear();
            return false;
        }
        self.last.push_back(figures.iter().sum::<f64>() / sampled as f64);
        if self.last.len() > QUIET_READINGS {
            self.last.pop_front();
        }
        let mean = self.last.iter().sum::<f64>() / self.last.len() as f64;
        tracing::debug!(reading = ?figures, mean, "gossip settling");
        self.last.len() == QUIET_READINGS && mean < QUIET_PERCENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_workers_spread_over_the_list_are_sampled() {
        let names: Vec<String> = (1..=100).map(|i| format!("w{i}")).collect();
        assert_eq!(sample(&names), ["w1", "w50", "w100"]);
        assert_eq!(sample(&names[..2]), ["w1", "w2"]);
        assert_eq!(sample(&names[..1]), ["w1"]);
        assert!(sample(&[]).is_empty());
    }

    #[test]
    fn settled_once_the_last_readings_average_quiet() {
        let (quiet, burst, busy) = ([0.4, 0.3, 0.5], [0.4, 1.5, 0.5], [3.0, 2.9, 3.1]);
        let mut readings = Readings::default();
        assert!(!readings.push(&busy, 3));
        for _ in 1..QUIET_READINGS {
            assert!(!readings.push(&quiet, 3), "the busy reading still weighs");
        }
        assert!(readings.push(&burst, 3), "one worker's burst alone is not busy");
        assert!(!readings.push(&[0.4, 0.3], 3), "a missing figure starts over");
        assert!(!readings.push(&[0.4, 0.3, 0.0], 3), "so does a stream's first sample");
        for _ in 1..QUIET_READINGS {
            assert!(!readings.push(&quiet, 3));
        }
        assert!(readings.push(&quiet, 3));
    }

    #[test]
    fn no_figures_at_all_is_told_apart_from_busy() {
        let mut readings = Readings::default();
        assert!(!readings.push(&[], 3));
        assert!(!readings.seen_any);
        assert!(!readings.push(&[2.0], 3));
        assert!(readings.seen_any);
    }
}
