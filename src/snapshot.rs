//! A picture of a cluster for people to look at: its nodes with their
//! containers' resource usage, and the tasks on each. The web visualizer
//! and `swarmlab top` draw it.

use bollard::models::TaskState;
use serde::Serialize;

use crate::cluster::{ManagerLink, NodeContainer, cluster_names, node_containers};
use crate::engine::HostEngine;
use crate::naming::{ClusterName, NodeName, Role};
use crate::stats::{StatsFeed, Usage};
use crate::swarm::{self, Availability, ManagerStatus, NodeStatus, SwarmView};

/// How much of a cluster a snapshot could see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SnapshotStatus {
    #[default]
    Ok,
    /// No manager answers: containers only, no swarm.
    Degraded,
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
            Err(error) => {
                snapshot.status = SnapshotStatus::Degraded;
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
                })
                .collect();
            tasks.sort_by_key(|t| (t.service.clone(), t.slot.parse::<u64>().unwrap_or(0)));
            view.tasks = tasks;
        }
        view
    }
}
