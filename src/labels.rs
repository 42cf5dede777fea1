//! The labels on every container, volume and network swarmlab creates.
//! They are the only record of a cluster: no state file exists that could
//! disagree with the engine.

use std::collections::HashMap;

use crate::naming::{ClusterName, NodeName};

pub(crate) const CLUSTER: &str = "io.swarmlab.cluster";
pub(crate) const ROLE: &str = "io.swarmlab.role";
pub(crate) const NODE: &str = "io.swarmlab.node";
/// On a node container: "plain" when its engine API has no TLS (--insecure).
pub(crate) const API: &str = "io.swarmlab.api";
/// On a node container: how it runs, "privileged" or "capabilities" (the
/// explicit profile used where the engine refuses --privileged).
pub(crate) const SECURITY: &str = "io.swarmlab.security";
/// On a node container: its settings from a cluster file (JSON).
pub(crate) const SETTINGS: &str = "io.swarmlab.settings";
/// On the network: the settings of each role (JSON), for nodes added later.
pub(crate) const MANAGER_SETTINGS: &str = "io.swarmlab.settings.manager";
pub(crate) const WORKER_SETTINGS: &str = "io.swarmlab.settings.worker";
/// On the network: host ports forwarded to nodes, as HOST:NODE:PORT,...
pub(crate) const FORWARDS: &str = "io.swarmlab.forwards";
/// On the network: the host port the first manager's engine API was given
/// at create (`--api-port`), so that a container made anew for that node
/// (node restart, upgrade, certificate renewal) is published there again.
pub(crate) const API_PORT: &str = "io.swarmlab.api.port";
/// On the network: "1" when the node engines' certificate is good for every
/// address of the network, so that workers need no published API port
/// where the host routes to the network.
pub(crate) const DIRECT_API: &str = "io.swarmlab.api.direct";

/// On everything one operation makes (a create, a node add, a node
/// restart): that operation's own ID. Its rollback removes what carries it
/// and nothing else: not what a concurrent create of the same name made,
/// nor an object of someone else's that bears a name swarmlab would use.
pub(crate) const RUN: &str = "io.swarmlab.run";

/// The ID of one operation that makes objects (its `io.swarmlab.run` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run(String);

impl Run {
    pub fn new() -> Self {
        Run(crate::host::random_suffix())
    }

    /// Marks `labels` as this run's.
    pub(crate) fn mark(&self, labels: &mut HashMap<String, String>) {
        labels.insert(RUN.to_string(), self.0.clone());
    }

    /// Whether an object with `labels` was made by this run.
    pub(crate) fn made(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.and_then(|l| l.get(RUN)) == Some(&self.0)
    }

    /// An engine list filter for this run's objects of `cluster`.
    pub(crate) fn filter(&self, cluster: &ClusterName) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![format!("{CLUSTER}={cluster}"), format!("{RUN}={}", self.0)],
        )])
    }
}

impl Default for Run {
    fn default() -> Self {
        Self::new()
    }
}

/// Labels of a cluster-wide object (the network).
pub(crate) fn cluster(cluster: &ClusterName) -> HashMap<String, String> {
    HashMap::from([(CLUSTER.to_string(), cluster.to_string())])
}

/// Labels of a node's container and volume.
pub(crate) fn node(cluster: &ClusterName, node: NodeName) -> HashMap<String, String> {
    HashMap::from([
        (CLUSTER.to_string(), cluster.to_string()),
        (ROLE.to_string(), node.role.to_string()),
        (NODE.to_string(), node.hostname()),
    ])
}

/// Whether an object with `labels` is the container or volume of `node`
/// of `cluster`.
pub(crate) fn is_node_of(labels: &HashMap<String, String>, cluster: &ClusterName, node_name: NodeName) -> bool {
    node(cluster, node_name)
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// An engine list filter that selects one cluster's objects, or every
/// swarmlab object when `cluster` is None.
pub(crate) fn filter(cluster: Option<&ClusterName>) -> HashMap<String, Vec<String>> {
    let label = match cluster {
        Some(name) => format!("{CLUSTER}={name}"),
        None => CLUSTER.to_string(),
    };
    HashMap::from([("label".to_string(), vec![label])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_knows_its_own_objects_only() {
        let cluster = ClusterName::new("lab").unwrap();
        let (mine, theirs) = (Run::new(), Run::new());
        assert_ne!(mine, theirs);
        let mut labels = node(&cluster, "worker-1".parse().unwrap());
        assert!(!mine.made(Some(&labels)), "unmarked");
        mine.mark(&mut labels);
        assert!(mine.made(Some(&labels)));
        assert!(!theirs.made(Some(&labels)));
        assert!(!mine.made(None));
        assert!(is_node_of(&labels, &cluster, "worker-1".parse().unwrap()));
        assert!(!is_node_of(&labels, &cluster, "worker-2".parse().unwrap()));
        assert!(!is_node_of(&HashMap::new(), &cluster, "worker-1".parse().unwrap()));
        let filter = mine.filter(&cluster);
        assert_eq!(filter["label"].len(), 2, "both the cluster and the run");
        assert_eq!(filter["label"][0], "io.swarmlab.cluster=lab");
    }
}
