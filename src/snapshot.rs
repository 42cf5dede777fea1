//! A picture of a cluster for people to look at: its nodes with their
//! containers' resource usage, and the tasks on each. The web visualizer
//! and `swarmlab top` draw it.

use bollard::models::{NodeSpecAvailabilityEnum, NodeState, Reachability, TaskState};
use serde::Serialize;

use crate::cluster::{ManagerLink, NodeContainer, cluster_names, node_containers};
use crate::engine::HostEngine;
use crate::naming::{ClusterName, NodeName};
use crate::stats::{StatsFeed, Usage};
use crate::swarm::{self, SwarmView};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub cluster: String,
    /// ok, degraded (no manager answers), gone (the cluster does not exist)
    /// or unreachable (the host engine does not answer).
    pub status: String,
    pub message: String,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeView {
    pub hostname: String,
    pub role: String,
    /// leader, reachable, unreachable; empty for workers.
    pub manager_status: String,
    pub availability: String,
    pub engine_version: String,
    /// ready, down, unknown, disconnected; absent when the swarm does not list it.
    pub state: String,
    pub container: String,
    pub container_state: String,
    pub usage: Option<Usage>,
    pub tasks: Vec<TaskView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskView {
    pub id: String,
    pub service: String,
    pub slot: String,
    pub image: String,
    pub state: String,
    /// On a node that is down: the swarm will replace it elsewhere.
    pub lost: bool,
    /// The task's container on its node.
    pub container: String,
}

/// Builds snapshots, keeping a manager client and the containers' stats
/// streams between them.
pub struct Collector {
    engine: HostEngine,
    name: ClusterName,
    manager: ManagerLink,
    stats: StatsFeed,
}

impl Collector {
    pub fn new(engine: &HostEngine, name: &ClusterName) -> Self {
        Collector {
            engine: engine.clone(),
            name: name.clone(),
            manager: ManagerLink::new(engine, name),
            stats: StatsFeed::default(),
        }
    }

    pub async fn collect(&mut self) -> Snapshot {
        let mut snapshot = Snapshot {
            cluster: self.name.to_string(),
            status: "ok".into(),
            ..Default::default()
        };
        let containers = match node_containers(&self.engine, Some(&self.name)).await {
            Ok(mut all) => all.remove(&self.name).unwrap_or_default(),
            Err(error) => {
                snapshot.status = "unreachable".into();
                snapshot.message = format!("the Docker engine does not answer: {error}");
                return snapshot;
            }
        };
        if containers.is_empty() {
            let exists = cluster_names(&self.engine)
                .await
                .map(|n| n.contains(&self.name))
                .unwrap_or(false);
            snapshot.status = "gone".into();
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
            Err(error) => {
                snapshot.status = "degraded".into();
                snapshot.message = format!("no manager answers, the swarm cannot be read: {error}");
                None
            }
        };
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
            role: node.role.to_string(),
            state: "absent".into(),
            container: container.map(|c| c.name.clone()).unwrap_or_default(),
            container_state: container.map(|c| c.state.clone()).unwrap_or_else(|| "missing".into()),
            usage: container.filter(|c| c.running).and_then(|c| self.stats.get(&c.name)),
            ..Default::default()
        };
        let Some(swarm) = swarm else { return view };
        if let Some(node) = swarm.node(&host) {
            view.role = match node.spec.as_ref().and_then(|s| s.role) {
                Some(bollard::models::NodeSpecRoleEnum::MANAGER) => "manager".into(),
                Some(_) => "worker".into(),
                None => view.role,
            };
            view.manager_status = match node.manager_status.as_ref() {
                Some(m) if m.leader == Some(true) => "leader".into(),
                Some(m) if m.reachability == Some(Reachability::REACHABLE) => "reachable".into(),
                Some(_) => "unreachable".into(),
                None => String::new(),
            };
            view.availability = match node.spec.as_ref().and_then(|s| s.availability) {
                Some(NodeSpecAvailabilityEnum::ACTIVE) => "active",
                Some(NodeSpecAvailabilityEnum::PAUSE) => "pause",
                Some(NodeSpecAvailabilityEnum::DRAIN) => "drain",
                _ => "",
            }
            .into();
            view.engine_version = node
                .description
                .as_ref()
                .and_then(|d| d.engine.as_ref())
                .and_then(|e| e.engine_version.clone())
                .unwrap_or_default();
            let state = node.status.as_ref().and_then(|s| s.state).unwrap_or(NodeState::UNKNOWN);
            // A node whose container stopped is down, whatever the swarm
            // has noticed so far.
            view.state = if running { state.to_string() } else { "down".into() };
            // Tasks meant to run, and the ones still running on a node that
            // went down: shown as lost until the node comes back.
            let down = view.state != "ready";
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
                })
                .collect();
            tasks.sort_by_key(|t| (t.service.clone(), t.slot.parse::<u64>().unwrap_or(0)));
            view.tasks = tasks;
        }
        view
    }
}
