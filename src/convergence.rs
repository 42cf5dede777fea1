//! Whether a cluster is where it should be: every node that should be up is
//! Ready, every service runs its desired replicas on live nodes. Used by
//! `wait` and by every command that breaks something and times the repair.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::{ManagerLink, node_containers};
use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::naming::ClusterName;
use crate::swarm::{self, SwarmView};

/// One look at a cluster.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterState {
    /// Hostnames whose containers run, so that they should be Ready.
    pub expected: BTreeSet<String>,
    /// Hostnames the swarm lists as Ready.
    pub ready: BTreeSet<String>,
    /// Of those, the ones whose availability is Active (tasks may go there).
    pub active: BTreeSet<String>,
    /// Hostnames the swarm lists as Down (or otherwise not Ready) and no
    /// entry of the same name is Ready.
    pub down: BTreeSet<String>,
    pub services: Vec<ServiceState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub name: String,
    pub desired: u64,
    /// Tasks running on live nodes: Ready in the swarm, container running.
    pub running: u64,
    /// Of those, how many run on each node.
    pub per_node: BTreeMap<String, u64>,
    /// The IDs of those tasks.
    #[serde(skip)]
    pub task_ids: BTreeSet<String>,
}

impl ClusterState {
    /// What is still missing, as short phrases; empty when converged.
    pub(crate) fn missing(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .expected
            .difference(&self.ready)
            .map(|host| format!("{host} not Ready"))
            .collect();
        for service in &self.services {
            if service.running != service.desired {
                missing.push(format!(
                    "{} {}/{} running",
                    service.name, service.running, service.desired
                ));
            }
        }
        missing
    }

    pub(crate) fn converged(&self) -> bool {
        self.missing().is_empty()
    }

    pub(crate) fn service(&self, name: &str) -> Option<&ServiceState> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// Reads cluster states, keeping a manager client between looks.
pub struct Observer {
    engine: HostEngine,
    name: ClusterName,
    manager: ManagerLink,
    /// Whether a lost quorum ends a wait at once (nothing will change by
    /// itself) instead of being waited out like any other look that failed.
    stop_on_quorum_loss: bool,
}

impl Observer {
    pub fn new(engine: &HostEngine, name: &ClusterName) -> Self {
        Observer {
            engine: engine.clone(),
            name: name.clone(),
            manager: ManagerLink::new(engine, name),
            stop_on_quorum_loss: false,
        }
    }

    pub(crate) fn stopping_on_quorum_loss(mut self) -> Self {
        self.stop_on_quorum_loss = true;
        self
    }

    pub(crate) async fn look(&mut self) -> Result<ClusterState> {
        let containers = node_containers(&self.engine, Some(&self.name))
            .await?
            .remove(&self.name)
            .unwrap_or_default();
        let swarm = self.manager.read(false).await?;
        let mut state = ClusterState {
            expected: containers
                .iter()
                .filter(|c| c.running)
                .map(|c| c.node.hostname())
                .collect(),
            ..Default::default()
        };
        let mut live = BTreeSet::new();
        for node in &swarm.nodes {
            let Some(host) = swarm::hostname(node) else { continue };
            if swarm::is_ready(node) {
                state.ready.insert(host.to_string());
                if swarm::availability(node) == swarm::Availability::Active {
                    state.active.insert(host.to_string());
                }
                // The swarm needs a few heartbeats to see a node that is gone;
                // its tasks stop counting as soon as its container does not run.
                if state.expected.contains(host) {
                    live.insert(node.id.clone().unwrap_or_default());
                }
            }
        }
        for node in &swarm.nodes {
            if let Some(host) = swarm::hostname(node).filter(|h| !state.ready.contains(*h)) {
                state.down.insert(host.to_string());
            }
        }
        for service in &swarm.services {
            let desired = match service
                .spec
                .as_ref()
                .and_then(|s| s.mode.as_ref())
                .and_then(|m| m.replicated.as_ref())
            {
                Some(replicated) => replicated.replicas.unwrap_or(1).max(0) as u64,
                None => service
                    .service_status
                    .as_ref()
                    .and_then(|s| s.desired_tasks)
                    .unwrap_or(state.active.len() as u64),
            };
            let mut per_node = BTreeMap::new();
            let mut task_ids = BTreeSet::new();
            for task in swarm
                .tasks
                .iter()
                .filter(|t| Some(&t.service_id) == service.id.as_ref())
            {
                if task.is_running() && live.contains(&task.node_id) {
                    *per_node.entry(task.hostname.clone()).or_insert(0) += 1;
                    task_ids.insert(task.id.clone());
                }
            }
            state.services.push(ServiceState {
                name: SwarmView::service_name(service).to_string(),
                desired,
                running: per_node.values().sum(),
                per_node,
                task_ids,
            });
        }
        state.services.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(state)
    }

    /// Polls until `done` holds for a look; returns how long that took and
    /// the last look. At `timeout`, fails with what `done` still lacked.
    pub(crate) async fn until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&ClusterState) -> bool,
    ) -> Result<(Duration, ClusterState)> {
        let started = Instant::now();
        let mut last_error = None;
        let mut last_state = None;
        loop {
            match self.look().await {
                Ok(state) if done(&state) => return Ok((started.elapsed(), state)),
                Ok(state) => last_state = Some(state),
                Err(error @ Error::QuorumLost { .. }) if self.stop_on_quorum_loss => return Err(error),
                Err(error) => last_error = Some(error),
            }
            if started.elapsed() >= timeout {
                let still = match (&last_state, &last_error) {
                    (Some(state), _) if !state.missing().is_empty() => state.missing().join(", "),
                    (_, Some(error)) => error.to_string(),
                    _ => "no change".to_string(),
                };
                return Err(Error::Timeout {
                    what: format!("{what} (still: {still})"),
                    after: timeout,
                    hint: "`swarmlab inspect` and `docker service ps` show where things stand".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every node that should be up is Ready and every service
    /// runs its desired replicas on live nodes.
    pub async fn converged(&mut self, timeout: Duration) -> Result<(Duration, ClusterState)> {
        self.until(timeout, "the cluster to converge", ClusterState::converged)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_nodes_and_services() {
        let state = ClusterState {
            expected: ["manager-1", "worker-1"].map(String::from).into(),
            ready: ["manager-1"].map(String::from).into(),
            active: ["manager-1"].map(String::from).into(),
            down: ["worker-1"].map(String::from).into(),
            services: vec![ServiceState {
                name: "quotes".into(),
                desired: 11,
                running: 9,
                per_node: BTreeMap::new(),
                task_ids: BTreeSet::new(),
            }],
        };
        assert_eq!(state.missing(), ["worker-1 not Ready", "quotes 9/11 running"]);
        assert!(!state.converged());
    }

    #[test]
    fn a_whole_cluster_misses_nothing() {
        let state = ClusterState {
            expected: ["manager-1"].map(String::from).into(),
            ready: ["manager-1", "worker-9"].map(String::from).into(),
            services: vec![ServiceState {
                name: "web".into(),
                desired: 2,
                running: 2,
                per_node: BTreeMap::new(),
                task_ids: BTreeSet::new(),
            }],
            ..Default::default()
        };
        assert!(
            state.missing().is_empty(),
            "a Ready node nobody expects is no shortfall"
        );
        assert!(state.converged());
        assert_eq!(state.service("web").map(|s| s.desired), Some(2));
        assert!(state.service("db").is_none());
    }
}
