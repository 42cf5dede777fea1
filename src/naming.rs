//! Names of clusters and nodes, and the names of the engine objects derived
//! from them. Everything here is pure: the same inputs always give the same
//! names, which is what lets a node be recreated after its container is gone.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

pub const DEFAULT_CLUSTER: &str = "swarmlab";
/// Swarm recommends an odd number of managers, seven at most; nine leaves room to experiment.
pub(crate) const MAX_MANAGERS: u32 = 9;
/// Limited by the node addresses of one /24 cluster network, whose top
/// addresses the port forwarder and its port containers keep (see `addressing`).
pub(crate) const MAX_WORKERS: u32 = 200;
const MAX_NAME_LEN: usize = 40;

/// A validated cluster name: it prefixes container, volume and network names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn new(name: &str) -> Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(ClusterName(name.to_string()))
        } else {
            Err(Error::invalid(format!(
                "invalid cluster name {name:?}: use 1 to {MAX_NAME_LEN} lowercase letters, digits and '-', starting with a letter"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cluster's bridge network on the host engine.
    pub(crate) fn network(&self) -> String {
        format!("{}-net", self.0)
    }

    /// The docker context that `swarmlab context` creates for the cluster.
    pub(crate) fn context(&self) -> String {
        format!("swarmlab-{}", self.0)
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "manager" => Ok(Role::Manager),
            "worker" => Ok(Role::Worker),
            other => Err(Error::invalid(format!("invalid role {other:?}: use manager or worker"))),
        }
    }
}

/// A node of a cluster: `manager-1`, `worker-3`. Its hostname is what
/// `docker node ls` shows; its container is `<cluster>-<hostname>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName {
    pub role: Role,
    pub index: u32,
}

impl NodeName {
    pub(crate) fn new(role: Role, index: u32) -> Self {
        NodeName { role, index }
    }

    /// The node that inits the swarm, and the only one a fixed API port
    /// (--api-port) goes to.
    pub(crate) fn first_manager() -> Self {
        NodeName::new(Role::Manager, 1)
    }

    pub(crate) fn hostname(&self) -> String {
        format!("{}-{}", self.role, self.index)
    }

    pub(crate) fn container(&self, cluster: &ClusterName) -> String {
        format!("{}-{}", cluster, self.hostname())
    }

    /// The volume that holds the node's /var/lib/docker.
    pub(crate) fn volume(&self, cluster: &ClusterName) -> String {
        self.container(cluster)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.role, self.index)
    }
}

impl FromStr for NodeName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid(format!(
                "invalid node name {s:?}: nodes are named manager-N or worker-N (see `swarmlab inspect`)"
            ))
        };
        let (role, index) = s.rsplit_once('-').ok_or_else(invalid)?;
        let role: Role = role.parse().map_err(|_| invalid())?;
        let index: u32 = index.parse().map_err(|_| invalid())?;
        if index == 0 {
            return Err(invalid());
        }
        Ok(NodeName { role, index })
    }
}

/// Checks the node counts of a new cluster.
pub(crate) fn check_counts(managers: u32, workers: u32) -> Result<()> {
    if managers == 0 {
        return Err(Error::invalid(
            "a cluster needs at least one manager: use --managers 1 or more",
        ));
    }
    if managers > MAX_MANAGERS {
        return Err(Error::invalid(format!(
            "at most {MAX_MANAGERS} managers are supported (Swarm recommends 3, 5 or 7): lower --managers"
        )));
    }
    if workers > MAX_WORKERS {
        return Err(Error::invalid(format!(
            "at most {MAX_WORKERS} workers are supported: lower --workers"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for good in ["swarmlab", "a", "lab-2", "x1-y2"] {
            assert!(ClusterName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Lab", "1lab", "lab-", "la_b", "lab.x", &"a".repeat(41)] {
            assert!(ClusterName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_names_round_trip() {
        let node: NodeName = "worker-12".parse().unwrap();
        assert_eq!(node, NodeName::new(Role::Worker, 12));
        assert_eq!(node.hostname(), "worker-12");
        let cluster = ClusterName::new("lab").unwrap();
        assert_eq!(node.container(&cluster), "lab-worker-12");
        for bad in ["worker", "worker-0", "boss-1", "worker-x", "-1"] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn counts() {
        assert!(check_counts(1, 0).is_ok());
        assert!(check_counts(0, 3).is_err());
        assert!(check_counts(10, 3).is_err());
        assert!(check_counts(1, 241).is_err());
    }
}
