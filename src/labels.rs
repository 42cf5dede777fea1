//! The labels on every container, volume and network swarmlab creates.
//! They are the only record of a cluster: no state file exists that could
//! disagree with the engine.

use std::collections::HashMap;

use crate::naming::{ClusterName, NodeName};

pub const CLUSTER: &str = "io.swarmlab.cluster";
pub const ROLE: &str = "io.swarmlab.role";
pub const NODE: &str = "io.swarmlab.node";
/// On a node container: "plain" when its engine API has no TLS (--insecure).
pub const API: &str = "io.swarmlab.api";
/// On a node container: how it runs, "privileged" or "capabilities" (the
/// explicit profile used where the engine refuses --privileged).
pub const SECURITY: &str = "io.swarmlab.security";
/// On a node container: its settings from a cluster file (JSON).
pub const SETTINGS: &str = "io.swarmlab.settings";
/// On the network: the settings of each role (JSON), for nodes added later.
pub const MANAGER_SETTINGS: &str = "io.swarmlab.settings.manager";
pub const WORKER_SETTINGS: &str = "io.swarmlab.settings.worker";
/// On the network: host ports forwarded to nodes, as HOST:NODE:PORT,...
pub const FORWARDS: &str = "io.swarmlab.forwards";
/// On the network: "1" when the node engines' certificate is good for every
/// address of the network, so that workers need no published API port
/// where the host routes to the network.
pub const DIRECT_API: &str = "io.swarmlab.api.direct";

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
