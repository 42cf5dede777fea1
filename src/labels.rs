//! The labels on every container, volume and network swarmlab creates.
//! They are the only record of a cluster: no state file exists that could
//! disagree with the engine.

use std::collections::HashMap;

use crate::naming::{ClusterName, NodeName};

pub const CLUSTER: &str = "io.swarmlab.cluster";
pub const ROLE: &str = "io.swarmlab.role";
pub const NODE: &str = "io.swarmlab.node";

/// Labels of a cluster-wide object (the network).
pub fn cluster(cluster: &ClusterName) -> HashMap<String, String> {
    HashMap::from([(CLUSTER.to_string(), cluster.to_string())])
}

/// Labels of a node's container and volume.
pub fn node(cluster: &ClusterName, node: NodeName) -> HashMap<String, String> {
    HashMap::from([
        (CLUSTER.to_string(), cluster.to_string()),
        (ROLE.to_string(), node.role.to_string()),
        (NODE.to_string(), node.hostname()),
    ])
}

/// An engine list filter that selects one cluster's objects, or every
/// swarmlab object when `cluster` is None.
pub fn filter(cluster: Option<&ClusterName>) -> HashMap<String, Vec<String>> {
    let label = match cluster {
        Some(name) => format!("{CLUSTER}={name}"),
        None => CLUSTER.to_string(),
    };
    HashMap::from([("label".to_string(), vec![label])])
}
