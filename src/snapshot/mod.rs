//! A picture of a cluster for people to look at: its nodes with their
//! containers' resource usage, and the tasks on each. The web visualizer
//! and `swarmlab top` draw it.

use std::collections::{BTreeMap, BTreeSet};

use bollard::models::TaskState;
use serde::Serialize;

use crate::cluster::{ManagerLink, NodeContainer, cluster_names, node_containers};
use crate::engine::HostEngine;
use crate::error::Error;
use crate::forwarder_container::{ForwarderStatus, PortPath, PortStatus};
use crate::naming::{ClusterName, NodeName, Role};
use crate::stats::{StatsFeed, Usage};
use crate::swarm::{self, Availability, ManagerStatus, NodeStatus, SwarmView};

#[cfg(test)]
pub(crate) mod fixtures;

/// How much of a cluster a snapshot could see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SnapshotStatus {
    #[default]
    Ok,
    /// No manager answers: containers only, no swarm.
    Degraded,
    /// Managers answer but cannot elect a leader: containers only.
    #[serde(rename = "quorum-lost")]
    QuorumLost,
    /// The cluster does not exist (any more).
    Gone,
    /// The host engine does not answer.
    Unreachable,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Snapshot {
    pub(crate) cluster: String,
    pub(crate) status: SnapshotStatus,
    pub(crate) message: String,
    pub(crate) nodes: Vec<NodeView>,
    /// Tasks the swarm marks failed or rejected, for telling a failure from
    /// a scale-down; not shown.
    #[serde(skip)]
    pub(crate) failed: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NodeView {
    pub(crate) hostname: String,
    pub(crate) role: Role,
    pub(crate) manager_status: ManagerStatus,
    pub(crate) availability: Availability,
    pub(crate) engine_version: String,
    /// Down too when the node's container does not run, whatever the swarm
    /// has noticed so far.
    pub(crate) state: NodeStatus,
    pub(crate) container: String,
    pub(crate) container_state: String,
    pub(crate) usage: Option<Usage>,
    pub(crate) tasks: Vec<TaskView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct TaskView {
    pub(crate) id: String,
    pub(crate) service: String,
    pub(crate) slot: String,
    pub(crate) image: String,
    pub(crate) state: String,
    /// On a node that is down: the swarm will replace it elsewhere.
    pub(crate) lost: bool,
    /// The task's container on its node.
    pub(crate) container: String,
    /// Connections the forwarder has sent it, when a published port of its
    /// service goes through the forwarder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) requests: Option<u64>,
}

impl Snapshot {
    /// Puts the forwarder's connection counts on the tasks they went to. A
    /// task is known to the forwarder by `service.slot` and its node; a task
    /// behind several published ports sums them.
    pub(crate) fn count_requests(&mut self, forwarder: &ForwarderStatus) {
        let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        // Through the routing mesh a connection goes to a node's port and
        // IPVS picks the task: only where the forwarder picks it is the
        // count the task's.
        let picked = |p: &&PortStatus| matches!(p.path, PortPath::TaskDirect | PortPath::HostMode);
        for backend in forwarder.ports.iter().filter(picked).flat_map(|p| &p.backends) {
            *counts.entry((&backend.node, &backend.task)).or_default() += backend.connections;
        }
        for node in &mut self.nodes {
            for task in &mut node.tasks {
                let name = format!("{}.{}", task.service, task.slot);
                task.requests = counts.get(&(node.hostname.as_str(), name.as_str())).copied();
            }
        }
    }
}

/// Builds snapshots, keeping a manager client and the containers' stats
/// streams between them.
pub(crate) struct Collector {
    engine: HostEngine,
    name: ClusterName,
    manager: ManagerLink,
    stats: StatsFeed,
}

impl Collector {
    pub(crate) fn new(engine: &HostEngine, name: &ClusterName) -> Self {
        Collector {
            engine: engine.clone(),
            name: name.clone(),
            manager: ManagerLink::new(engine, name),
            stats: StatsFeed::default(),
        }
    }

    pub(crate) async fn collect(&mut self) -> Snapshot {
        let mut snapshot = Snapshot {
            cluster: self.name.to_string(),
            ..Default::default()
        };
        let containers = match node_containers(&self.engine, Some(&self.name)).await {
            Ok(mut all) => all.remove(&self.name).unwrap_or_default(),
            Err(error) => {
                snapshot.status = SnapshotStatus::Unreachable;
                snapshot.message = format!("the Docker engine does not answer: {error}");
                return snapshot;
            }
        };
        if containers.is_empty() {
            let exists = cluster_names(&self.engine)
                .await
                .map(|n| n.contains(&self.name))
                .unwrap_or(false);
            snapshot.status = SnapshotStatus::Gone;
            snapshot.message = if exists {
                format!("cluster {} has no node containers left", self.name)
            } else {
                format!("cluster {} does not exist (any more)", self.name)
            };
            return snapshot;
        }
        let running: Vec<String> = containers
            .iter()
            .filter(|c| c.running)
            .map(|c| c.name.clone())
            .collect();
        self.stats.track(&self.engine.docker, &running);

        let swarm = match self.manager.read(true).await {
            Ok(swarm) => Some(swarm),
            Err(error @ Error::QuorumLost { .. }) => {
                snapshot.status = SnapshotStatus::QuorumLost;
                snapshot.message = error.to_string();
                None
            }
            Err(error) if crate::error::means_no_leader(&error.to_string()) => {
                snapshot.status = SnapshotStatus::QuorumLost;
                snapshot.message = format!("quorum lost in cluster {}: {error}", self.name);
                None
            }
            Err(error) => {
                snapshot.status = SnapshotStatus::Degraded;
                snapshot.message = format!("no manager answers, the swarm cannot be read: {error}");
                None
            }
        };
        if let Some(swarm) = &swarm {
            snapshot.failed = swarm
                .tasks
                .iter()
                .filter(|t| matches!(t.state, Some(TaskState::FAILED | TaskState::REJECTED)))
                .map(|t| t.id.clone())
                .collect();
        }
        // Every node the host engine or the swarm knows: a node whose
        // container was removed behind swarmlab's back stays visible.
        let mut hosts: Vec<NodeName> = containers.iter().map(|c| c.node).collect();
        if let Some(swarm) = &swarm {
            hosts.extend(
                swarm
                    .nodes
                    .iter()
                    .filter_map(|n| swarm::hostname(n)?.parse::<NodeName>().ok()),
            );
        }
        hosts.sort();
        hosts.dedup();
        snapshot.nodes = hosts
            .into_iter()
            .map(|node| {
                let container = containers.iter().find(|c| c.node == node);
                self.node_view(node, container, swarm.as_ref())
            })
            .collect();
        snapshot
    }

    fn node_view(&self, node: NodeName, container: Option<&NodeContainer>, swarm: Option<&SwarmView>) -> NodeView {
        let host = node.hostname();
        let running = container.is_some_and(|c| c.running);
        let mut view = NodeView {
            hostname: host.clone(),
            role: node.role,
            manager_status: ManagerStatus::NotManager,
            availability: Availability::Unsaid,
            engine_version: String::new(),
            state: NodeStatus::Absent,
            container: container.map(|c| c.name.clone()).unwrap_or_default(),
            container_state: container.map(|c| c.state.clone()).unwrap_or_else(|| "missing".into()),
            usage: container.filter(|c| c.running).and_then(|c| self.stats.get(&c.name)),
            tasks: Vec::new(),
        };
        let Some(swarm) = swarm else { return view };
        if let Some(node) = swarm.node(&host) {
            view.role = swarm::role(node).unwrap_or(view.role);
            view.manager_status = swarm::manager_status(node);
            view.availability = swarm::availability(node);
            view.engine_version = swarm::engine_version(node);
            view.state = if running { swarm::status(node) } else { NodeStatus::Down };
            // Tasks meant to run, and the ones still running on a node that
            // went down: shown as lost until the node comes back.
            let down = view.state != NodeStatus::Ready;
            let mut tasks: Vec<TaskView> = swarm
                .tasks
                .iter()
                .filter(|t| Some(&t.node_id) == node.id.as_ref())
                .filter(|t| t.desired == Some(TaskState::RUNNING) || (down && t.is_running()))
                .map(|t| TaskView {
                    id: t.id.clone(),
                    service: t.service.clone(),
                    slot: t.slot.map(|s| s.to_string()).unwrap_or_default(),
                    image: t.image.clone(),
                    state: t.state.map(|s| s.to_string()).unwrap_or_default(),
                    lost: down,
                    container: t.container.clone(),
                    requests: None,
                })
                .collect();
            tasks.sort_by_key(|t| (t.service.clone(), t.slot.parse::<u64>().unwrap_or(0)));
            view.tasks = tasks;
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures;
    use crate::forwarder_container::{BackendStatus, ForwarderStatus, PortPath, PortState, PortStatus, PublishMode};

    #[test]
    fn requests_go_to_the_task_of_their_node_and_slot_summed_over_ports() {
        let backend = |node: &str, task: &str, connections| BackendStatus {
            task: task.into(),
            node: node.into(),
            connections,
            ..Default::default()
        };
        let port = |published_port, backends| PortStatus {
            service: "quotes".into(),
            published_port,
            target_port: 80,
            publish_mode: PublishMode::Ingress,
            address: String::new(),
            path: PortPath::TaskDirect,
            state: PortState::Forwarding,
            message: String::new(),
            backends,
        };
        let forwarder = ForwarderStatus {
            ports: vec![
                port(
                    8080,
                    vec![backend("worker-1", "quotes.2", 5), backend("manager-1", "quotes.1", 1)],
                ),
                port(
                    8081,
                    vec![backend("worker-1", "quotes.2", 2), backend("worker-2", "quotes.3", 9)],
                ),
            ],
            ..Default::default()
        };
        let mut snapshot = fixtures::snapshot();
        snapshot.count_requests(&forwarder);
        let counts: Vec<_> = snapshot
            .nodes
            .iter()
            .flat_map(|n| {
                n.tasks
                    .iter()
                    .map(move |t| (n.hostname.as_str(), t.slot.as_str(), t.requests))
            })
            .collect();
        assert_eq!(
            counts,
            vec![
                ("manager-1", "1", Some(1)),
                ("worker-1", "2", Some(7)),
                ("worker-1", "3", None)
            ],
            "quotes.3 runs on worker-1, not on worker-2 where the forwarder saw one"
        );
    }
}
