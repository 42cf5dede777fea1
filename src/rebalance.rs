//! Spreading a service's replicas evenly again, e.g. after a node returned:
//! Swarm never moves running tasks by itself.
//!
//! The fewest moves are the tasks above each node's fair share. Scaling a
//! service down removes tasks from the nodes holding the most copies first
//! (swarmkit's replicated orchestrator sorts them so), and scaling it up
//! again places the new tasks on the nodes holding the fewest: so one scale
//! down by the number of moves and one scale up move exactly those tasks.
//! `docker service update --force`, the usual advice, restarts every task.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::UpdateServiceOptionsBuilder;
use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::convergence::{ClusterState, Observer};
use crate::error::{Context, Error, Result};
use crate::progress::Progress;

#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub service: String,
    pub before: BTreeMap<String, u64>,
    pub after: BTreeMap<String, u64>,
    /// Tasks moved from one node to another.
    pub moved: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RebalanceReport {
    pub services: Vec<Spread>,
    pub elapsed: Duration,
}

/// How many tasks each node should hold to be even, with the fewest moves:
/// the nodes holding the most keep the larger shares.
pub(crate) fn fair_shares(counts: &BTreeMap<String, u64>, total: u64) -> BTreeMap<String, u64> {
    let nodes = counts.len() as u64;
    if nodes == 0 {
        return BTreeMap::new();
    }
    let (base, extra) = (total / nodes, total % nodes);
    let mut by_load: Vec<(&String, &u64)> = counts.iter().collect();
    by_load.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by_load
        .into_iter()
        .enumerate()
        .map(|(rank, (node, _))| (node.clone(), base + u64::from((rank as u64) < extra)))
        .collect()
}

/// The number of tasks that must move for `counts` to become `shares`.
pub(crate) fn moves(counts: &BTreeMap<String, u64>, shares: &BTreeMap<String, u64>) -> u64 {
    counts
        .iter()
        .map(|(node, count)| count.saturating_sub(shares.get(node).copied().unwrap_or(0)))
        .sum()
}

fn counts_on(state: &ClusterState, service: &str) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = state.active.iter().map(|node| (node.clone(), 0)).collect();
    if let Some(service) = state.service(service) {
        for (node, count) in &service.per_node {
            if let Some(slot) = counts.get_mut(node) {
                *slot = *count;
            }
        }
    }
    counts
}

fn is_even(counts: &BTreeMap<String, u64>) -> bool {
    let (min, max) = (counts.values().min(), counts.values().max());
    matches!((min, max), (Some(min), Some(max)) if max - min <= 1)
}

/// Rebalances `services` (every replicated service when empty).
pub async fn rebalance(
    cluster: &Cluster,
    services: &[String],
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<RebalanceReport> {
    let started = Instant::now();
    let mut observer = Observer::new(&cluster.engine, &cluster.name);
    let (_, state) = observer.converged(timeout).await?;
    let (_, manager) = cluster.any_manager().await?;
    let replicated = replicated_services(&manager).await?;
    for wanted in services {
        if !replicated.contains(wanted) {
            return Err(Error::invalid(format!(
                "no replicated service named {wanted:?}: `docker service ls` lists them"
            )));
        }
    }
    let chosen: Vec<String> = if services.is_empty() {
        replicated
    } else {
        services.to_vec()
    };

    let mut report = Vec::new();
    for service in chosen {
        let before = counts_on(&state, &service);
        let total: u64 = before.values().sum();
        let mut moved = 0;
        let mut counts = before.clone();
        // The scheduler may decide otherwise now and then: check, and retry.
        for _ in 0..3 {
            let shares = fair_shares(&counts, total);
            let to_move = moves(&counts, &shares);
            if to_move == 0 || is_even(&counts) {
                break;
            }
            progress.step(&service, &format!("moving {to_move} task(s)"));
            scale(&manager, &service, total - to_move).await?;
            wait_running(&mut observer, &service, total - to_move, timeout).await?;
            scale(&manager, &service, total).await?;
            let state = wait_running(&mut observer, &service, total, timeout).await?;
            moved += to_move;
            counts = counts_on(&state, &service);
        }
        progress.done(&service, &format!("{moved} task(s) moved"));
        report.push(Spread {
            service,
            before,
            after: counts,
            moved,
        });
    }
    Ok(RebalanceReport {
        services: report,
        elapsed: started.elapsed(),
    })
}

async fn replicated_services(manager: &Docker) -> Result<Vec<String>> {
    let services = manager.list_services(None).await.context("cannot list services")?;
    let mut names: Vec<String> = services
        .into_iter()
        .filter_map(|s| {
            let spec = s.spec?;
            spec.mode?.replicated?;
            spec.name
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Sets the replica count of a replicated service.
pub(crate) async fn scale(manager: &Docker, service: &str, replicas: u64) -> Result<()> {
    let current = manager
        .inspect_service(service, None)
        .await
        .with_context(|| format!("cannot inspect service {service}"))?;
    let version = current.version.and_then(|v| v.index).unwrap_or_default() as i32;
    let mut spec = current.spec.unwrap_or_default();
    if let Some(replicated) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) {
        replicated.replicas = Some(replicas as i64);
    }
    let options = UpdateServiceOptionsBuilder::new().version(version).build();
    manager
        .update_service(service, spec, options, None)
        .await
        .with_context(|| format!("cannot scale service {service}"))?;
    Ok(())
}

async fn wait_running(
    observer: &mut Observer,
    service: &str,
    replicas: u64,
    timeout: Duration,
) -> Result<ClusterState> {
    let (_, state) = observer
        .until(timeout, &format!("{service} to run {replicas} task(s)"), |state| {
            state
                .service(service)
                .is_some_and(|s| s.desired == replicas && s.running == replicas)
        })
        .await?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn eleven_over_four_after_a_node_returned() {
        let before = counts(&[("manager-1", 4), ("worker-1", 4), ("worker-2", 0), ("worker-3", 3)]);
        let shares = fair_shares(&before, 11);
        assert_eq!(shares.values().sum::<u64>(), 11);
        assert!(shares.values().all(|s| *s == 2 || *s == 3));
        assert_eq!(shares["worker-2"], 2, "the emptiest node takes a smaller share");
        assert_eq!(moves(&before, &shares), 2);
    }

    #[test]
    fn even_needs_no_move() {
        let before = counts(&[("a", 3), ("b", 3), ("c", 3), ("d", 2)]);
        assert_eq!(moves(&before, &fair_shares(&before, 11)), 0);
        assert!(is_even(&before));
    }

    #[test]
    fn counts_cover_every_active_node_and_nothing_else() {
        let mut per_node = BTreeMap::new();
        per_node.insert("worker-1".to_string(), 3);
        per_node.insert("drained".to_string(), 1);
        let state = ClusterState {
            active: ["worker-1", "worker-2"].map(String::from).into(),
            services: vec![crate::convergence::ServiceState {
                name: "web".into(),
                desired: 4,
                running: 4,
                per_node,
                task_ids: Default::default(),
            }],
            ..Default::default()
        };
        assert_eq!(counts_on(&state, "web"), counts(&[("worker-1", 3), ("worker-2", 0)]));
        assert!(!is_even(&counts_on(&state, "web")));
        assert_eq!(
            counts_on(&state, "nothing"),
            counts(&[("worker-1", 0), ("worker-2", 0)])
        );
    }
}
