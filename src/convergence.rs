//! Whether a cluster is where it should be: every node that should be up is
//! Ready, every service runs its desired replicas on live nodes. Used by
//! `wait` and by every command that breaks something and times the repair.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::{ManagerLink, node_containers};
use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::naming::ClusterName;
use crate::swarm::{self, SwarmView, TaskInfo};

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

    /// One look, and whether `done` holds for it.
    async fn look(&mut self, done: &mut impl FnMut(&ClusterState) -> bool) -> Result<(bool, ClusterState)> {
        let containers = node_containers(&self.engine, Some(&self.name))
            .await?
            .remove(&self.name)
            .unwrap_or_default();
        let swarm = self.manager.read(false).await?;
        let expected: BTreeSet<String> = containers
            .iter()
            .filter(|c| c.running)
            .map(|c| c.node.hostname())
            .collect();
        let state = tally(&expected, &swarm, &Starts::new());
        if !done(&state) {
            return Ok((false, state));
        }
        // A node's containers die with it, but for a moment after its
        // container starts again (an engine restart, `node start`) the swarm
        // still lists its old tasks as running. Before a look is taken for
        // done, it asks when the nodes that hold tasks started, and counts
        // only the tasks that reported since.
        let hosts: BTreeSet<&String> = state.services.iter().flat_map(|s| s.per_node.keys()).collect();
        let docker = &self.engine.docker;
        let starts = join_all(
            containers
                .iter()
                .filter(|c| c.running && hosts.contains(&c.node.hostname()))
                .map(|c| async move {
                    let info = docker.inspect_container(&c.id, None).await.ok()?;
                    Some((c.node.hostname(), crate::engine::engine_time(&info.state?.started_at?)?))
                }),
        )
        .await;
        let state = tally(&expected, &swarm, &starts.into_iter().flatten().collect());
        Ok((done(&state), state))
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
            match self.look(&mut done).await {
                Ok((true, state)) => return Ok((started.elapsed(), state)),
                Ok((false, state)) => last_state = Some(state),
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

/// When node containers last started, by hostname.
type Starts = HashMap<String, SystemTime>;

/// The state a swarm's answer shows, given which hostnames' containers run
/// (`expected`) and, where known, when they started: a task that last
/// reported before its node's container started is gone with it.
fn tally(expected: &BTreeSet<String>, swarm: &SwarmView, starts: &Starts) -> ClusterState {
    let mut state = ClusterState {
        expected: expected.clone(),
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
    let died_with_node = |task: &TaskInfo| {
        task.since
            .zip(starts.get(&task.hostname))
            .is_some_and(|(since, started)| since < *started)
    };
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
            if task.is_running() && live.contains(&task.node_id) && !died_with_node(task) {
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
    state
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

    /// Three Ready nodes, a service of three replicas, one task on each
    /// node that reported running at `since` seconds.
    fn swarm_of_three(since: u64) -> SwarmView {
        use bollard::models::{
            Node, NodeDescription, NodeState, NodeStatus as Status, Service, ServiceSpec, ServiceSpecMode,
            ServiceSpecModeReplicated, TaskState,
        };
        let hosts = ["manager-1", "worker-1", "worker-2"];
        SwarmView {
            nodes: hosts
                .iter()
                .map(|host| Node {
                    id: Some(format!("id-{host}")),
                    description: Some(NodeDescription {
                        hostname: Some(host.to_string()),
                        ..Default::default()
                    }),
                    status: Some(Status {
                        state: Some(NodeState::READY),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            services: vec![Service {
                id: Some("quotes-id".into()),
                spec: Some(ServiceSpec {
                    name: Some("quotes".into()),
                    mode: Some(ServiceSpecMode {
                        replicated: Some(ServiceSpecModeReplicated { replicas: Some(3) }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            tasks: hosts
                .iter()
                .map(|host| TaskInfo {
                    id: format!("task-on-{host}"),
                    service_id: "quotes-id".into(),
                    node_id: format!("id-{host}"),
                    hostname: host.to_string(),
                    state: Some(TaskState::RUNNING),
                    since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(since)),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn tasks_reported_before_their_node_started_again_do_not_count() {
        let swarm = swarm_of_three(100);
        let expected: BTreeSet<String> = swarm
            .nodes
            .iter()
            .filter_map(swarm::hostname)
            .map(String::from)
            .collect();
        assert!(tally(&expected, &swarm, &Starts::new()).converged());

        let restarted = Starts::from([(
            "worker-2".to_string(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(150),
        )]);
        let state = tally(&expected, &swarm, &restarted);
        assert_eq!(state.missing(), ["quotes 2/3 running"]);
        assert!(!state.services[0].task_ids.contains("task-on-worker-2"));

        let earlier = Starts::from([("worker-2".to_string(), SystemTime::UNIX_EPOCH + Duration::from_secs(50))]);
        assert!(
            tally(&expected, &swarm, &earlier).converged(),
            "a task newer than its node's start runs"
        );
    }

    #[test]
    fn tasks_of_nodes_whose_containers_do_not_run_do_not_count() {
        let swarm = swarm_of_three(100);
        let expected = ["manager-1", "worker-1"].map(String::from).into();
        let state = tally(&expected, &swarm, &Starts::new());
        assert_eq!(state.missing(), ["quotes 2/3 running"]);
        assert_eq!(state.ready.len(), 3, "the swarm has yet to see worker-2 go");
    }
}
