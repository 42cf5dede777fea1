//! Container resource usage, computed the way the docker CLI computes it,
//! and a feed that keeps the latest figures of a set of containers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bollard::Docker;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Usage {
    /// Percent of one CPU (can exceed 100 on several CPUs), as `docker stats`.
    pub(crate) cpu_percent: f64,
    /// Memory in use without the reclaimable page cache, as `docker stats`.
    pub(crate) memory_bytes: u64,
    pub(crate) memory_limit: u64,
    pub(crate) net_rx_bytes: u64,
    pub(crate) net_tx_bytes: u64,
}

/// The usage a stats sample reports. CPU: the container's share of the
/// host's CPU time between this sample and the one before, times the
/// number of CPUs. Memory: usage minus inactive file pages, whose key is
/// `total_inactive_file` under cgroup v1 and `inactive_file` under v2.
pub(crate) fn usage(sample: &ContainerStatsResponse) -> Usage {
    let cpu = sample.cpu_stats.as_ref();
    let previous = sample.precpu_stats.as_ref();
    let total = |s: Option<&bollard::models::ContainerCpuStats>| {
        s.and_then(|s| s.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |s: Option<&bollard::models::ContainerCpuStats>| s.and_then(|s| s.system_cpu_usage).unwrap_or(0);
    let cpu_delta = total(cpu).saturating_sub(total(previous)) as f64;
    let system_delta = system(cpu).saturating_sub(system(previous)) as f64;
    let cpus = cpu
        .and_then(|s| s.online_cpus)
        .filter(|n| *n > 0)
        .map(f64::from)
        .or_else(|| {
            cpu.and_then(|s| s.cpu_usage.as_ref())
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as f64)
        })
        .unwrap_or(1.0);
    let cpu_percent = if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    };

    let memory = sample.memory_stats.as_ref();
    let raw = memory.and_then(|m| m.usage).unwrap_or(0);
    let inactive = memory
        .and_then(|m| m.stats.as_ref())
        .and_then(|s| s.get("total_inactive_file").or_else(|| s.get("inactive_file")).copied())
        .unwrap_or(0);
    let memory_bytes = if inactive < raw { raw - inactive } else { raw };

    let (net_rx_bytes, net_tx_bytes) = sample.networks.iter().flatten().fold((0, 0), |(rx, tx), (_, n)| {
        (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
    });
    Usage {
        cpu_percent,
        memory_bytes,
        memory_limit: memory.and_then(|m| m.limit).unwrap_or(0),
        net_rx_bytes,
        net_tx_bytes,
    }
}

/// Keeps one stats stream open per tracked container (the engine sends a
/// sample a second) and the latest usage of each.
#[derive(Default)]
pub(crate) struct StatsFeed {
    latest: Arc<Mutex<HashMap<String, Usage>>>,
    streams: HashMap<String, JoinHandle<()>>,
}

impl StatsFeed {
    /// Follows exactly `containers` (IDs or names) of `docker`.
    pub(crate) fn track(&mut self, docker: &Docker, containers: &[String]) {
        self.streams.retain(|id, stream| {
            let keep = containers.contains(id) && !stream.is_finished();
            if !keep {
                stream.abort();
            }
            keep
        });
        self.latest
            .lock()
            .expect("stats lock")
            .retain(|id, _| containers.contains(id));
        for id in containers {
            if self.streams.contains_key(id) {
                continue;
            }
            let (docker, latest, key) = (docker.clone(), self.latest.clone(), id.clone());
            let stream = tokio::spawn(async move {
                let options = StatsOptionsBuilder::new().stream(true).build();
                let mut samples = docker.stats(&key, Some(options));
                while let Some(Ok(sample)) = samples.next().await {
                    latest.lock().expect("stats lock").insert(key.clone(), usage(&sample));
                }
            });
            self.streams.insert(id.clone(), stream);
        }
    }

    pub(crate) fn get(&self, container: &str) -> Option<Usage> {
        self.latest.lock().expect("stats lock").get(container).copied()
    }
}

impl Drop for StatsFeed {
    fn drop(&mut self) {
        for stream in self.streams.values() {
            stream.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats, ContainerNetworkStats};

    fn sample(total: (u64, u64), system: (u64, u64), cpus: u32, memory: (u64, &str, u64)) -> ContainerStatsResponse {
        let cpu = |t, s| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(t),
                ..Default::default()
            }),
            system_cpu_usage: Some(s),
            online_cpus: Some(cpus),
            ..Default::default()
        };
        ContainerStatsResponse {
            cpu_stats: Some(cpu(total.1, system.1)),
            precpu_stats: Some(cpu(total.0, system.0)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(memory.0),
                stats: Some(HashMap::from([(memory.1.to_string(), memory.2)])),
                limit: Some(1 << 30),
                ..Default::default()
            }),
            networks: Some(HashMap::from([(
                "eth0".to_string(),
                ContainerNetworkStats {
                    rx_bytes: Some(100),
                    tx_bytes: Some(50),
                    ..Default::default()
                },
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn cgroup_v1_figures() {
        // 0.2 s of CPU over 2 s of all CPUs' time on 2 CPUs: 20 %.
        let figures = usage(&sample(
            (1_000, 201_000),
            (0, 2_000_000),
            2,
            (50 << 20, "total_inactive_file", 10 << 20),
        ));
        assert!((figures.cpu_percent - 20.0).abs() < 1e-9, "{figures:?}");
        assert_eq!(figures.memory_bytes, 40 << 20);
        assert_eq!((figures.net_rx_bytes, figures.net_tx_bytes), (100, 50));
    }

    #[test]
    fn cgroup_v2_figures() {
        let figures = usage(&sample((0, 50), (0, 1_000), 4, (30 << 20, "inactive_file", 5 << 20)));
        assert!((figures.cpu_percent - 20.0).abs() < 1e-9, "{figures:?}");
        assert_eq!(figures.memory_bytes, 25 << 20);
    }

    #[test]
    fn first_sample_has_no_cpu_figure() {
        let figures = usage(&sample((0, 0), (0, 0), 2, (1 << 20, "inactive_file", 0)));
        assert_eq!(figures.cpu_percent, 0.0);
    }
}
