//! How each node is made, from the [defaults], [role.*] and [nodes.*]
//! sections of a cluster file, each over the one before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::naming::{NodeName, Role};
use crate::node_choice::{Choice, EngineVersion};

/// How a node container is made and what the swarm knows of the node.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// The node image, e.g. "swarmlab/node:26.1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The Docker engine version the node runs, e.g. "28": a swarmlab node
    /// image of that engine (instead of `image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineVersion>,
    /// Memory limit of the node container, e.g. "512MiB" or "1g".
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::text::byte_size")]
    pub memory: Option<u64>,
    /// CPUs the node container may use, e.g. 1.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Extra arguments for the node's dockerd.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dockerd_args: Vec<String>,
    /// Swarm node labels, for placement constraints (node.labels.KEY == VALUE).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl NodeSettings {
    /// `self` with `over` on top: the image (or engine) and limits
    /// replaced, arguments appended, labels merged.
    pub(crate) fn merged(&self, over: &NodeSettings) -> NodeSettings {
        let mut labels = self.labels.clone();
        labels.extend(over.labels.clone());
        // An image or an engine said closer to the node replaces both.
        let (image, engine) = if over.choice().is_some() {
            (over.image.clone(), over.engine.clone())
        } else {
            (self.image.clone(), self.engine.clone())
        };
        NodeSettings {
            image,
            engine,
            memory: over.memory.or(self.memory),
            cpus: over.cpus.or(self.cpus),
            dockerd_args: self.dockerd_args.iter().chain(&over.dockerd_args).cloned().collect(),
            labels,
        }
    }

    /// How this node's image is chosen, if these settings say.
    pub(crate) fn choice(&self) -> Option<Choice> {
        Choice::from_parts(self.image.as_ref(), self.engine.as_ref())
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == NodeSettings::default()
    }
}

/// Per-node settings of a cluster, resolved from a file.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub defaults: NodeSettings,
    pub managers: NodeSettings,
    pub workers: NodeSettings,
    pub nodes: BTreeMap<String, NodeSettings>,
}

impl Settings {
    /// The settings of a role (defaults, then the role's).
    pub(crate) fn for_role(&self, role: Role) -> NodeSettings {
        match role {
            Role::Manager => self.defaults.merged(&self.managers),
            Role::Worker => self.defaults.merged(&self.workers),
        }
    }

    /// The settings of a node (its role's, then its own).
    pub(crate) fn for_node(&self, node: NodeName) -> NodeSettings {
        let role = self.for_role(node.role);
        match self.nodes.get(&node.hostname()) {
            Some(own) => role.merged(own),
            None => role,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_merge() {
        let base = NodeSettings {
            memory: Some(1),
            dockerd_args: vec!["--a".into()],
            labels: BTreeMap::from([("x".into(), "1".into())]),
            ..Default::default()
        };
        let over = NodeSettings {
            cpus: Some(2.0),
            dockerd_args: vec!["--b".into()],
            labels: BTreeMap::from([("x".into(), "2".into())]),
            ..Default::default()
        };
        let merged = base.merged(&over);
        assert_eq!(merged.memory, Some(1));
        assert_eq!(merged.cpus, Some(2.0));
        assert_eq!(merged.dockerd_args, ["--a", "--b"]);
        assert_eq!(merged.labels["x"], "2");
    }

    #[test]
    fn the_closest_image_or_engine_wins() {
        let engine = |v: &str| NodeSettings {
            engine: Some(EngineVersion::parse(v).unwrap()),
            ..Default::default()
        };
        let image = NodeSettings {
            image: Some("mine:1".into()),
            ..Default::default()
        };
        let settings = Settings {
            defaults: image.clone(),
            workers: engine("28"),
            nodes: BTreeMap::from([
                ("worker-2".into(), engine("26.1")),
                ("manager-2".into(), engine("20.10")),
            ]),
            ..Default::default()
        };
        let choice = |host: &str| settings.for_node(host.parse().unwrap()).choice().unwrap().to_string();
        assert_eq!(choice("manager-1"), "mine:1");
        assert_eq!(choice("manager-2"), "engine 20.10");
        assert_eq!(choice("worker-1"), "engine 28");
        assert_eq!(choice("worker-2"), "engine 26.1");
        assert_eq!(NodeSettings::default().choice(), None);
    }
}
