//! Clusters as the host engine knows them: found by their labels, never
//! through a state file; reaching their nodes' engines; bringing nodes up
//! and removing what an operation made. The lifecycle of whole clusters
//! (create, delete, start, stop, status) is `lifecycle`'s, above this.

mod env;
mod launcher;
mod manager_link;
mod managers;
mod removal;

pub(crate) use launcher::{Budget, Launcher};

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};

use bollard::Docker;
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder};

pub(crate) use manager_link::ManagerLink;
pub use removal::Deleted;
pub(crate) use removal::{remove_labelled, remove_run};

use crate::engine::{self, HostEngine};
use crate::error::{Context, Error, Result};
use crate::labels;
use crate::naming::{ClusterName, NodeName, Role};
use crate::node_choice::EngineVersion;
use crate::node_container::{API_PORT_NUMBER, ClusterFacts, NodePlan, NodeSecurity};
use crate::tls::ClusterTls;

/// A node container as listed by the host engine.
#[derive(Debug, Clone)]
pub struct NodeContainer {
    pub node: NodeName,
    pub id: String,
    pub name: String,
    pub running: bool,
    pub state: String,
    pub image: String,
    pub address: Option<Ipv4Addr>,
    pub api_port: Option<u16>,
    /// Its settings from a cluster file (JSON), if any.
    pub settings: Option<String>,
    /// Its engine API answers plain HTTP (--insecure).
    pub insecure: bool,
    /// How it runs; None for containers made before swarmlab recorded it.
    pub security: Option<NodeSecurity>,
    /// The engine version its swarmlab node image was built with (the
    /// image's label, which the container inherits); None for other images.
    pub engine: Option<String>,
}

impl NodeContainer {
    /// Where its engine API answers: the published port on 127.0.0.1, else
    /// (nodes made without one, where the host routes to the cluster
    /// network) the container's own address.
    pub(crate) fn api_endpoint(&self) -> Option<SocketAddr> {
        match (self.api_port, self.address) {
            (Some(port), _) => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            (None, Some(address)) => Some(SocketAddr::from((address, API_PORT_NUMBER))),
            (None, None) => None,
        }
    }

    fn from_summary(summary: &ContainerSummary) -> Option<Self> {
        let labels = summary.labels.as_ref()?;
        let node: NodeName = labels.get(labels::NODE)?.parse().ok()?;
        let state = summary.state.unwrap_or(ContainerSummaryStateEnum::EMPTY);
        let address = summary
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|networks| networks.values().find_map(|e| e.ip_address.as_deref()?.parse().ok()));
        let api_port = summary
            .ports
            .iter()
            .flatten()
            .find(|p| p.private_port == API_PORT_NUMBER)
            .and_then(|p| p.public_port);
        Some(NodeContainer {
            node,
            id: summary.id.clone().unwrap_or_default(),
            name: summary
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            running: state == ContainerSummaryStateEnum::RUNNING,
            state: state.to_string(),
            image: summary.image.clone().unwrap_or_default(),
            address,
            api_port,
            settings: labels.get(labels::SETTINGS).cloned(),
            insecure: labels.get(labels::API).is_some_and(|api| api == "plain"),
            security: labels.get(labels::SECURITY).and_then(|s| NodeSecurity::from_label(s)),
            engine: labels.get(crate::node_image::ENGINE_LABEL).cloned(),
        })
    }
}

/// Every swarmlab node container on the host engine, by cluster.
pub(crate) async fn node_containers(
    engine: &HostEngine,
    cluster: Option<&ClusterName>,
) -> Result<BTreeMap<ClusterName, Vec<NodeContainer>>> {
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&labels::filter(cluster))
        .build();
    let summaries = engine
        .docker
        .list_containers(Some(options))
        .await
        .context("cannot list containers")?;
    let mut clusters: BTreeMap<ClusterName, Vec<NodeContainer>> = BTreeMap::new();
    for summary in &summaries {
        let Some(name) = summary
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::CLUSTER))
            .and_then(|n| ClusterName::new(n).ok())
        else {
            continue;
        };
        if let Some(node) = NodeContainer::from_summary(summary) {
            clusters.entry(name).or_default().push(node);
        }
    }
    for nodes in clusters.values_mut() {
        nodes.sort_by_key(|n| n.node);
    }
    Ok(clusters)
}

/// Names of every cluster that has anything left on the host engine:
/// containers, volumes or its network.
pub(crate) async fn cluster_names(engine: &HostEngine) -> Result<BTreeSet<ClusterName>> {
    let filter = labels::filter(None);
    let containers = engine
        .docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new().all(true).filters(&filter).build(),
        ))
        .await
        .context("cannot list containers")?;
    let networks = engine
        .docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filter).build()))
        .await
        .context("cannot list networks")?;
    let volumes = engine
        .docker
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filter).build()))
        .await
        .context("cannot list volumes")?;
    let container_labels = containers.into_iter().filter_map(|c| c.labels);
    let network_labels = networks.into_iter().filter_map(|n| n.labels);
    let volume_labels = volumes.volumes.into_iter().flatten().map(|v| v.labels);
    Ok(container_labels
        .chain(network_labels)
        .chain(volume_labels)
        .filter_map(|labels| labels.get(labels::CLUSTER).and_then(|n| ClusterName::new(n).ok()))
        .collect())
}

/// An existing cluster, with what is needed to reach its node engines.
pub struct Cluster {
    pub engine: HostEngine,
    pub name: ClusterName,
    pub nodes: Vec<NodeContainer>,
    tls: ClusterTls,
}

impl Cluster {
    /// Finds a cluster by name; fails when the host engine has no container of it.
    pub async fn open(engine: &HostEngine, name: &ClusterName) -> Result<Self> {
        let nodes = node_containers(engine, Some(name))
            .await?
            .remove(name)
            .unwrap_or_default();
        if nodes.is_empty() {
            return Err(Error::ClusterNotFound(name.to_string()));
        }
        Self::of_nodes(engine, name, nodes).await
    }

    /// A cluster whose node containers have been listed already.
    pub(crate) async fn of_nodes(engine: &HostEngine, name: &ClusterName, nodes: Vec<NodeContainer>) -> Result<Self> {
        Ok(Cluster {
            engine: engine.clone(),
            name: name.clone(),
            nodes,
            tls: ClusterTls::open(engine, name).await?,
        })
    }

    pub fn tls(&self) -> &ClusterTls {
        &self.tls
    }

    /// A client for a node's engine, when its container runs.
    pub(crate) fn node_engine(&self, node: &NodeContainer) -> Result<Docker> {
        let endpoint = if self.engine.is_on_cluster_network() {
            node.address.map(|a| SocketAddr::from((a, API_PORT_NUMBER)))
        } else {
            node.api_endpoint()
        };
        let endpoint = endpoint.filter(|_| node.running).ok_or_else(|| Error::NodeFailed {
            node: node.node.hostname(),
            reason: format!("its container is {}", node.state),
        })?;
        engine::node_client(endpoint, (!node.insecure).then(|| self.tls.client_dir()))
    }

    pub(crate) fn container_of(&self, hostname: &str) -> Option<&NodeContainer> {
        self.nodes.iter().find(|n| n.node.hostname() == hostname)
    }
}

impl Cluster {
    async fn network(&self) -> Result<bollard::models::NetworkInspect> {
        network(&self.engine, &self.name).await
    }

    /// Host ports forwarded to nodes, from the cluster file it was made with.
    pub(crate) async fn forwards(&self) -> Result<Vec<crate::config::Forward>> {
        let network = self.network().await?;
        let text = network
            .labels
            .unwrap_or_default()
            .remove(labels::FORWARDS)
            .unwrap_or_default();
        text.split(',')
            .filter(|f| !f.is_empty())
            .map(crate::config::Forward::from_arg)
            .collect()
    }

    /// The image a new node of `role` takes: that of the role's first
    /// node (clusters may mix engines per role), else any node's.
    fn node_image(&self, role: Role) -> Result<String> {
        let same_role = self.nodes.iter().filter(|n| n.node.role == role);
        same_role
            .chain(self.nodes.iter())
            .map(|n| n.image.clone())
            .find(|image| !image.is_empty())
            .ok_or_else(|| Error::Other(format!("cluster {} has no node to take the image from", self.name)))
    }

    /// How the container of `node` is (or would be) made by operation
    /// `run`: with the settings its container had, else those of its role
    /// when the cluster was made; the first manager on the API port it was
    /// given at create, if any.
    pub(crate) async fn plan(&self, node: NodeName, run: &labels::Run) -> Result<NodePlan> {
        let network = self.network().await?;
        let network_id = network.id.clone().unwrap_or_else(|| self.name.network());
        let subnet = crate::addressing::subnet_of(&network)?;
        let role_key = match node.role {
            Role::Manager => labels::MANAGER_SETTINGS,
            Role::Worker => labels::WORKER_SETTINGS,
        };
        let settings = self
            .container_of(&node.hostname())
            .and_then(|c| c.settings.clone())
            .or_else(|| network.labels.as_ref()?.get(role_key).cloned())
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        // A node keeps its own image (clusters may mix them); a new one
        // takes the cluster's.
        let image = match self.container_of(&node.hostname()) {
            Some(container) if !container.image.is_empty() => container.image.clone(),
            _ => self.node_image(node.role)?,
        };
        let mut images = crate::node_image::Images::single(&image);
        let engine = self
            .nodes
            .iter()
            .filter(|n| n.image == image)
            .find_map(|n| n.engine.as_deref());
        images.set_engine(&image, engine.and_then(|e| EngineVersion::parse(e).ok()));
        let facts = ClusterFacts {
            cluster: &self.name,
            images: &images,
            network_id: &network_id,
            subnet: &subnet,
            direct_api: crate::node_container::direct_api(&self.engine, &network).await?,
            insecure: self.nodes.iter().any(|n| n.insecure),
            rootless: self.engine.facts().await?.nodes_rootless(),
            run,
            nodes: self.nodes.len() + usize::from(self.container_of(&node.hostname()).is_none()),
        };
        // The first manager keeps the API port it was given at create.
        let api_port = network
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::API_PORT)?.parse().ok())
            .filter(|_| node == NodeName::first_manager());
        Ok(NodePlan::new(&facts, node, settings, api_port))
    }

    /// A node container by hostname, or an error that lists the nodes.
    pub(crate) fn node(&self, hostname: &str) -> Result<&NodeContainer> {
        self.container_of(hostname).ok_or_else(|| {
            let names: Vec<String> = self.nodes.iter().map(|n| n.node.hostname()).collect();
            Error::invalid(format!(
                "cluster {} has no node {hostname:?} (its nodes: {})",
                self.name,
                names.join(", ")
            ))
        })
    }
}

/// The subnet of the network of cluster `name`.
pub(crate) async fn subnet(engine: &HostEngine, name: &ClusterName) -> Result<crate::addressing::Ipv4Net> {
    crate::addressing::subnet_of(&network(engine, name).await?)
}

/// The cluster's network, found by its label: a network of someone else's
/// that bears the same name is never the cluster's.
async fn network(engine: &HostEngine, name: &ClusterName) -> Result<bollard::models::NetworkInspect> {
    let options = ListNetworksOptionsBuilder::new()
        .filters(&labels::filter(Some(name)))
        .build();
    let listed = engine
        .docker
        .list_networks(Some(options))
        .await
        .context("cannot list networks")?;
    let id = listed.iter().find_map(|n| n.id.clone()).ok_or_else(|| {
        Error::Other(format!(
            "cluster {name} has no network of its own ({}): delete it and create it again",
            name.network()
        ))
    })?;
    engine
        .docker
        .inspect_network(&id, None)
        .await
        .with_context(|| format!("cannot inspect network {}", name.network()))
}

/// A launcher for adding nodes to an existing cluster.
pub(crate) async fn launcher_for<'a>(
    cluster: &'a Cluster,
    progress: &'a dyn crate::progress::Progress,
    budget: Budget,
) -> Result<Launcher<'a>> {
    Launcher::new(
        &cluster.engine,
        &cluster.tls,
        progress,
        budget,
        tokio_util::sync::CancellationToken::new(),
        labels::Run::new(),
    )
    .await
}
