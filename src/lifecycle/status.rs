//! What `ls` and `inspect` show: the host engine's containers joined with the
//! swarm's own node list, as read from a manager.

use bollard::models::Node;
use futures_util::future::join_all;
use serde::Serialize;

use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::naming::{ClusterName, Role};
use crate::node_container::NodeSecurity;
use crate::swarm::{self, Availability, ManagerStatus, NodeStatus};

use crate::cluster::{Cluster, NodeContainer, cluster_names, node_containers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterStatus {
    /// Every node container runs and every node is Ready.
    Running,
    /// Some nodes are not Ready or their containers do not run.
    Degraded,
    /// No node container runs.
    Stopped,
    /// Containers run but no manager answers.
    Unreachable,
    /// Only leftovers (a network, volumes) remain.
    Incomplete,
}

/// One line of `swarmlab ls`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    pub name: ClusterName,
    pub status: ClusterStatus,
    pub managers_ready: usize,
    pub managers: usize,
    pub workers_ready: usize,
    pub workers: usize,
    /// The engine versions its nodes' images were built with, each once
    /// (more than one in a mixed cluster).
    pub engines: Vec<String>,
}

/// One node of `swarmlab inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub hostname: String,
    pub role: Role,
    pub manager_status: ManagerStatus,
    pub swarm_state: NodeStatus,
    pub availability: Availability,
    pub container: String,
    pub container_state: String,
    pub address: String,
    pub image: String,
    pub engine_version: String,
    /// The host port of the node's engine API on 127.0.0.1.
    pub api_port: Option<u16>,
    /// privileged or capabilities (null for nodes made by older swarmlab).
    pub security: Option<NodeSecurity>,
}

/// Every cluster with its status.
pub async fn list(engine: &HostEngine) -> Result<Vec<ClusterSummary>> {
    let names = cluster_names(engine).await?;
    let mut containers = node_containers(engine, None).await?;
    let summaries = names.into_iter().map(|name| {
        let nodes = containers.remove(&name).unwrap_or_default();
        async move { summarize(engine, name, nodes).await }
    });
    Ok(join_all(summaries).await)
}

async fn summarize(engine: &HostEngine, name: ClusterName, nodes: Vec<NodeContainer>) -> ClusterSummary {
    let rows = if nodes.iter().any(|n| n.running) {
        swarm_nodes(engine, &name, nodes.clone()).await
    } else {
        None
    };
    summary_of(name, &nodes, rows.as_deref())
}

/// A cluster's line in `ls`, from its containers and, when a manager
/// answered, the rows it gave.
fn summary_of(name: ClusterName, nodes: &[NodeContainer], rows: Option<&[NodeRow]>) -> ClusterSummary {
    let count = |role| nodes.iter().filter(|n| n.node.role == role).count();
    let (managers, workers) = (count(Role::Manager), count(Role::Worker));
    let mut summary = ClusterSummary {
        name: name.clone(),
        status: ClusterStatus::Incomplete,
        managers_ready: 0,
        managers,
        workers_ready: 0,
        workers,
        engines: nodes
            .iter()
            .filter_map(|n| n.engine.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    if nodes.is_empty() {
        return summary;
    }
    if !nodes.iter().any(|n| n.running) {
        summary.status = ClusterStatus::Stopped;
        return summary;
    }
    let Some(rows) = rows else {
        summary.status = ClusterStatus::Unreachable;
        return summary;
    };
    let ready = |role| {
        rows.iter()
            .filter(|r| r.role == role && r.swarm_state == NodeStatus::Ready && r.container_state == "running")
            .count()
    };
    summary.managers_ready = ready(Role::Manager);
    summary.workers_ready = ready(Role::Worker);
    summary.status = if summary.managers_ready == managers && summary.workers_ready == workers {
        ClusterStatus::Running
    } else {
        ClusterStatus::Degraded
    };
    summary
}

async fn swarm_nodes(engine: &HostEngine, name: &ClusterName, nodes: Vec<NodeContainer>) -> Option<Vec<NodeRow>> {
    let cluster = Cluster::of_nodes(engine, name, nodes).await.ok()?;
    let (_, manager) = cluster.manager_at_a_glance("").await.ok()?;
    let listed = manager.list_nodes(None).await.ok()?;
    Some(rows(&cluster.nodes, &listed))
}

/// The nodes of one cluster, and why the swarm could not be read when it
/// could not (no manager answers, quorum lost): then the nodes are still
/// shown from what the host engine knows.
pub async fn inspect(cluster: &Cluster) -> Result<(Vec<NodeRow>, Option<Error>)> {
    let (listed, problem) = match cluster.manager_at_a_glance("").await {
        Ok((_, manager)) => (manager.list_nodes(None).await.unwrap_or_default(), None),
        Err(error) => (Vec::new(), Some(error)),
    };
    Ok((rows(&cluster.nodes, &listed), problem))
}

/// Joins containers and swarm entries by hostname.
fn rows(containers: &[NodeContainer], listed: &[Node]) -> Vec<NodeRow> {
    containers
        .iter()
        .map(|c| {
            let host = c.node.hostname();
            let entry = swarm::entry(listed, &host);
            NodeRow {
                role: entry.and_then(swarm::role).unwrap_or(c.node.role),
                manager_status: entry.map(swarm::manager_status).unwrap_or_default(),
                swarm_state: entry.map(swarm::status).unwrap_or_default(),
                availability: entry.map(swarm::availability).unwrap_or_default(),
                container: c.name.clone(),
                container_state: c.state.clone(),
                address: c.address.map(|a| a.to_string()).unwrap_or_default(),
                image: c.image.clone(),
                engine_version: entry.map(swarm::engine_version).unwrap_or_default(),
                api_port: c.api_port.filter(|_| c.running),
                security: c.security,
                hostname: host,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bollard::models::{NodeDescription, NodeSpec, NodeSpecRoleEnum, NodeState as Seen, NodeStatus as SeenStatus};

    use super::*;

    fn container(host: &str, running: bool) -> NodeContainer {
        NodeContainer {
            node: host.parse().unwrap(),
            id: format!("id-{host}"),
            name: format!("lab-{host}"),
            running,
            state: if running { "running" } else { "exited" }.into(),
            image: "swarmlab/node:latest".into(),
            address: Some("172.28.0.2".parse().unwrap()),
            api_port: Some(40000),
            settings: None,
            insecure: false,
            security: Some(NodeSecurity::Privileged),
            engine: Some("20.10.24".into()),
        }
    }

    fn entry(host: &str, state: Seen, role: Option<NodeSpecRoleEnum>) -> Node {
        Node {
            description: Some(NodeDescription {
                hostname: Some(host.into()),
                ..Default::default()
            }),
            status: Some(SeenStatus {
                state: Some(state),
                ..Default::default()
            }),
            spec: Some(NodeSpec {
                role,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn rows_join_containers_and_the_swarm_by_hostname() {
        let containers = [
            container("manager-1", true),
            container("worker-1", true),
            container("worker-2", false),
        ];
        let listed = [
            entry("manager-1", Seen::READY, Some(NodeSpecRoleEnum::MANAGER)),
            entry("worker-1", Seen::READY, Some(NodeSpecRoleEnum::MANAGER)),
        ];
        let rows = rows(&containers, &listed);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].role, Role::Manager, "a promoted worker shows its swarm role");
        assert_eq!(rows[2].swarm_state, NodeStatus::Absent, "not listed by the swarm");
        assert_eq!(rows[2].api_port, None, "no port while its container is stopped");
        assert_eq!(rows[0].api_port, Some(40000));
        assert_eq!(rows[0].security, Some(NodeSecurity::Privileged));
        let json = serde_json::to_value(&rows[2]).unwrap();
        assert_eq!(json["swarm_state"], "absent");
        assert_eq!(json["manager_status"], "");
        assert_eq!(json["security"], "privileged");
    }

    #[test]
    fn a_cluster_line_says_how_whole_it_is() {
        let name = ClusterName::new("lab").unwrap();
        let nodes = [container("manager-1", true), container("worker-1", true)];
        let ready = rows(
            &nodes,
            &[
                entry("manager-1", Seen::READY, None),
                entry("worker-1", Seen::READY, None),
            ],
        );
        let whole = summary_of(name.clone(), &nodes, Some(&ready));
        assert_eq!(
            (whole.status, whole.managers_ready, whole.workers_ready),
            (ClusterStatus::Running, 1, 1)
        );
        let one_down = rows(
            &nodes,
            &[
                entry("manager-1", Seen::READY, None),
                entry("worker-1", Seen::DOWN, None),
            ],
        );
        assert_eq!(
            summary_of(name.clone(), &nodes, Some(&one_down)).status,
            ClusterStatus::Degraded
        );
        assert_eq!(
            summary_of(name.clone(), &nodes, None).status,
            ClusterStatus::Unreachable
        );
        let stopped = [container("manager-1", false)];
        assert_eq!(summary_of(name.clone(), &stopped, None).status, ClusterStatus::Stopped);
        assert_eq!(
            summary_of(name, &[], None).status,
            ClusterStatus::Incomplete,
            "only leftovers"
        );
    }
}
