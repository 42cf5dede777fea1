//! A swarm's node entries, read one way for everyone.

use bollard::models::{Node, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState, Reachability};
use serde::Serialize;

use crate::naming::Role;

pub(crate) fn hostname(node: &Node) -> Option<&str> {
    node.description.as_ref()?.hostname.as_deref()
}

pub(crate) fn is_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
}

/// Every entry the swarm lists for `host`, the one that counts first: a
/// node recreated under the same name leaves stale entries behind, and the
/// Ready entry counts, else the newest.
pub(crate) fn entries<'a>(nodes: &'a [Node], host: &str) -> Vec<&'a Node> {
    let mut entries: Vec<&Node> = nodes.iter().filter(|n| hostname(n) == Some(host)).collect();
    entries.sort_by(|a, b| (is_ready(b), &b.created_at).cmp(&(is_ready(a), &a.created_at)));
    entries
}

/// The entry that counts for `host` (see [`entries`]).
pub(crate) fn entry<'a>(nodes: &'a [Node], host: &str) -> Option<&'a Node> {
    entries(nodes, host).into_iter().next()
}

/// A node's role in the swarm (promotion and demotion change it, not the
/// node's name).
pub(crate) fn role(node: &Node) -> Option<Role> {
    match node.spec.as_ref()?.role? {
        NodeSpecRoleEnum::MANAGER => Some(Role::Manager),
        _ => Some(Role::Worker),
    }
}

/// A node's state, as `docker node ls` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Ready,
    Down,
    Disconnected,
    Unknown,
    /// The swarm does not list the node.
    #[default]
    Absent,
}

/// A manager's standing in raft; empty (in JSON too) for workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerStatus {
    #[default]
    #[serde(rename = "")]
    NotManager,
    Leader,
    Reachable,
    Unreachable,
    /// A manager whose reachability the swarm does not say.
    Unknown,
}

/// Whether tasks may go to a node; empty (in JSON too) when not said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    #[default]
    #[serde(rename = "")]
    Unsaid,
    Active,
    Pause,
    Drain,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Ready => "ready",
            NodeStatus::Down => "down",
            NodeStatus::Disconnected => "disconnected",
            NodeStatus::Unknown => "unknown",
            NodeStatus::Absent => "absent",
        }
    }
}

impl ManagerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagerStatus::NotManager => "",
            ManagerStatus::Leader => "leader",
            ManagerStatus::Reachable => "reachable",
            ManagerStatus::Unreachable => "unreachable",
            ManagerStatus::Unknown => "unknown",
        }
    }
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Unsaid => "",
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }
}

macro_rules! displayed {
    ($($kind:ty),+) => {$(
        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

displayed!(NodeStatus, ManagerStatus, Availability);

pub(crate) fn status(node: &Node) -> NodeStatus {
    match node.status.as_ref().and_then(|s| s.state) {
        Some(NodeState::READY) => NodeStatus::Ready,
        Some(NodeState::DOWN) => NodeStatus::Down,
        Some(NodeState::DISCONNECTED) => NodeStatus::Disconnected,
        Some(NodeState::UNKNOWN) | None => NodeStatus::Unknown,
    }
}

pub(crate) fn manager_status(node: &Node) -> ManagerStatus {
    match node.manager_status.as_ref() {
        None => ManagerStatus::NotManager,
        Some(m) if m.leader == Some(true) => ManagerStatus::Leader,
        Some(m) => match m.reachability {
            Some(Reachability::REACHABLE) => ManagerStatus::Reachable,
            Some(Reachability::UNREACHABLE) => ManagerStatus::Unreachable,
            _ => ManagerStatus::Unknown,
        },
    }
}

pub(crate) fn availability(node: &Node) -> Availability {
    match node.spec.as_ref().and_then(|s| s.availability) {
        Some(NodeSpecAvailabilityEnum::ACTIVE) => Availability::Active,
        Some(NodeSpecAvailabilityEnum::PAUSE) => Availability::Pause,
        Some(NodeSpecAvailabilityEnum::DRAIN) => Availability::Drain,
        _ => Availability::Unsaid,
    }
}

/// The node's engine version, as the swarm heard it.
/// The node entry's version in the swarm's store: every change of the entry
/// (a registration, a status, a spec update) raises it.
pub(crate) fn version_index(node: &Node) -> u64 {
    node.version.as_ref().and_then(|v| v.index).unwrap_or_default()
}

pub(crate) fn engine_version(node: &Node) -> String {
    node.description
        .as_ref()
        .and_then(|d| d.engine.as_ref())
        .and_then(|e| e.engine_version.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use bollard::models::{
        EngineDescription, ManagerStatus as RaftStatus, NodeDescription, NodeSpec, NodeStatus as Seen,
    };

    use super::*;

    fn node(host: &str, state: NodeState, created: &str) -> Node {
        Node {
            id: Some(format!("{host}-{created}")),
            created_at: Some(created.into()),
            description: Some(NodeDescription {
                hostname: Some(host.into()),
                engine: Some(EngineDescription {
                    engine_version: Some("20.10.24".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(Seen {
                state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_entry_that_counts_is_ready_else_the_newest() {
        let nodes = vec![
            node("worker-1", NodeState::DOWN, "2026-01-01T00:00:00Z"),
            node("worker-1", NodeState::READY, "2026-01-01T00:00:01Z"),
            node("worker-1", NodeState::DOWN, "2026-01-01T00:00:02Z"),
            node("worker-2", NodeState::DOWN, "2026-01-01T00:00:00Z"),
            node("worker-2", NodeState::DOWN, "2026-01-01T00:00:09Z"),
        ];
        assert_eq!(
            entry(&nodes, "worker-1").unwrap().created_at.as_deref(),
            Some("2026-01-01T00:00:01Z")
        );
        assert_eq!(
            entry(&nodes, "worker-2").unwrap().created_at.as_deref(),
            Some("2026-01-01T00:00:09Z")
        );
        assert_eq!(entries(&nodes, "worker-1").len(), 3);
        assert!(entry(&nodes, "worker-3").is_none());
    }

    #[test]
    fn states_roles_and_availability_as_docker_node_ls_says() {
        let mut ready = node("manager-1", NodeState::READY, "t");
        assert_eq!(status(&ready), NodeStatus::Ready);
        assert_eq!(engine_version(&ready), "20.10.24");
        assert_eq!(role(&ready), None, "no spec: the name decides");
        assert_eq!(availability(&ready), Availability::Unsaid);
        ready.spec = Some(NodeSpec {
            role: Some(NodeSpecRoleEnum::MANAGER),
            availability: Some(NodeSpecAvailabilityEnum::DRAIN),
            ..Default::default()
        });
        assert_eq!(role(&ready), Some(Role::Manager));
        assert_eq!(availability(&ready), Availability::Drain);
        assert_eq!(
            status(&node("w", NodeState::DISCONNECTED, "t")),
            NodeStatus::Disconnected
        );
        assert_eq!(status(&Node::default()), NodeStatus::Unknown);
        assert_eq!(NodeStatus::default(), NodeStatus::Absent, "not listed");
    }

    #[test]
    fn manager_status_is_one_reading_for_everyone() {
        let mut n = node("manager-2", NodeState::READY, "t");
        assert_eq!(manager_status(&n), ManagerStatus::NotManager);
        let raft = |leader, reachability| {
            Some(RaftStatus {
                leader: Some(leader),
                reachability,
                ..Default::default()
            })
        };
        n.manager_status = raft(true, Some(Reachability::REACHABLE));
        assert_eq!(manager_status(&n), ManagerStatus::Leader);
        n.manager_status = raft(false, Some(Reachability::UNREACHABLE));
        assert_eq!(manager_status(&n), ManagerStatus::Unreachable);
        n.manager_status = raft(false, Some(Reachability::UNKNOWN));
        assert_eq!(manager_status(&n), ManagerStatus::Unknown);
        assert_eq!(
            serde_json::to_value(ManagerStatus::NotManager).unwrap(),
            "",
            "workers show an empty manager status, in JSON too"
        );
        assert_eq!(serde_json::to_value(Availability::Active).unwrap(), "active");
    }
}
