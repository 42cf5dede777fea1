//! A node's container on the host engine: what it is planned to be, how it
//! is configured (`config`, with the engine settings measured at scale in
//! `tuning`), whether it runs privileged (`security`), and making,
//! starting and watching it (`ops`).

mod config;
mod ops;
mod security;
mod tuning;

use std::net::Ipv4Addr;

use crate::addressing::Ipv4Net;
use crate::config::NodeSettings;
use crate::engine::HostEngine;
use crate::labels;
use crate::naming::{ClusterName, NodeName, Role};

pub(crate) use ops::{ensure_running, exec, prepare, published_api_port, recreate, start, wait_api_listening};
pub use security::NodeSecurity;
pub(crate) use security::{Security, privileged_choice};

/// Prepares a container to run its own engine (see assets/node-entrypoint.sh):
/// every node runs it, whatever its image's own entrypoint; it is also the
/// entrypoint of the image `node-image build` makes, so that the image works
/// without swarmlab too.
pub(crate) const ENTRYPOINT_SCRIPT: &str = include_str!("../../assets/node-entrypoint.sh");

/// The node engine's TLS port inside the container.
pub(crate) const API_PORT: &str = "2376/tcp";
pub(crate) const API_PORT_NUMBER: u16 = 2376;

/// Everything that decides what a node container looks like.
#[derive(Debug, Clone)]
pub(crate) struct NodePlan {
    pub(crate) cluster: ClusterName,
    pub(crate) node: NodeName,
    pub(crate) image: String,
    /// The engine version `image` runs, where it says (swarmlab's images).
    pub(crate) engine: Option<crate::node_choice::EngineVersion>,
    /// The cluster network's ID: its name can be ambiguous for a moment,
    /// while a concurrent create of the same name backs off.
    pub(crate) network: String,
    pub(crate) address: Ipv4Addr,
    /// The host's own address on the cluster network.
    pub(crate) gateway: Ipv4Addr,
    /// Publish the engine API on 127.0.0.1 (always for managers: the docker
    /// CLI talks to them there); else swarmlab reaches it at `address`.
    pub(crate) publish_api: bool,
    /// A fixed host port for the engine API; the engine picks one when None.
    pub(crate) api_port: Option<u16>,
    /// Limits, dockerd arguments and swarm labels from a cluster file.
    pub(crate) settings: NodeSettings,
    /// The engine API answers plain HTTP, without TLS (--insecure).
    pub(crate) insecure: bool,
    /// Its dockerd runs rootless, without cgroups (see
    /// `EngineFacts::nodes_rootless`).
    pub(crate) rootless: bool,
    /// The operation that makes the container and its volume.
    pub(crate) run: labels::Run,
    /// How many nodes the cluster has once this operation is done.
    pub(crate) cluster_nodes: usize,
}

/// What every node plan of one cluster shares.
#[derive(Debug, Clone)]
pub(crate) struct ClusterFacts<'a> {
    pub(crate) cluster: &'a ClusterName,
    pub(crate) images: &'a crate::node_choice::Images,
    pub(crate) network_id: &'a str,
    pub(crate) subnet: &'a Ipv4Net,
    /// This process reaches the cluster network directly (see [`direct_api`]):
    /// workers then go without a published API port.
    pub(crate) direct_api: bool,
    pub(crate) insecure: bool,
    pub(crate) rootless: bool,
    /// The operation that makes the nodes.
    pub(crate) run: &'a labels::Run,
    /// How many nodes the cluster has once this operation is done.
    pub(crate) nodes: usize,
}

impl NodePlan {
    /// The plan of `node`: its address follows from its name; managers
    /// always publish their API on 127.0.0.1 (the docker CLI talks to
    /// them there), workers only where the cluster network is not reached
    /// directly.
    pub(crate) fn new(facts: &ClusterFacts, node: NodeName, settings: NodeSettings, api_port: Option<u16>) -> Self {
        let image = facts.images.for_node(settings.choice().as_ref()).to_string();
        NodePlan {
            cluster: facts.cluster.clone(),
            node,
            engine: facts.images.engines.get(&image).cloned(),
            image,
            network: facts.network_id.to_string(),
            address: crate::addressing::node_address(facts.subnet, node),
            gateway: facts.subnet.gateway(),
            publish_api: node.role == Role::Manager || !facts.direct_api,
            api_port,
            settings,
            insecure: facts.insecure,
            rootless: facts.rootless,
            run: facts.run.clone(),
            cluster_nodes: facts.nodes,
        }
    }

    pub(crate) fn container(&self) -> String {
        self.node.container(&self.cluster)
    }
}

/// Whether workers on `network` go without a published API port: only where
/// this process reaches the network's containers at their own addresses
/// (the engine is local and the network's bridge is in our network
/// namespace), which spares the host a proxy process and firewall rules
/// per node. Not on Docker Desktop, rootless or remote engines.
pub(crate) async fn direct_api(
    engine: &HostEngine,
    network: &bollard::models::NetworkInspect,
) -> crate::error::Result<bool> {
    let certified = network
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(labels::DIRECT_API));
    Ok(certified && engine.is_local().await? && bridge_is_here(network.id.as_deref().unwrap_or_default()))
}

/// Whether the bridge of the network with `network_id` is an interface here.
pub(crate) fn bridge_is_here(network_id: &str) -> bool {
    network_id
        .get(..12)
        .is_some_and(|id| std::path::Path::new(&format!("/sys/class/net/br-{id}")).exists())
}
