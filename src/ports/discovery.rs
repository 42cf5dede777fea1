//! Reading, from the swarm and the host engine, which ports are published
//! and where the connections for each can go.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bollard::Docker;
use bollard::models::{EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum};

use crate::cluster::{Cluster, ManagerLink, NodeContainer};
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::naming::ClusterName;
use crate::swarm::SwarmView;

use super::netns::NodeNamespace;
use crate::forwarder_container::{BackendStatus, PortPath, PortState, PortStatus, PublishMode};

/// Where a connection for a backend goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Reachable from the host's network namespace.
    Direct(SocketAddr),
    /// Reachable only from inside a node container's network namespace.
    InNode {
        namespace: Arc<NodeNamespace>,
        address: SocketAddr,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backend {
    pub(crate) status: BackendStatus,
    pub(crate) target: Target,
}

/// One published port and the backends that answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) service: String,
    pub(crate) published: u16,
    pub(crate) target_port: u16,
    pub(crate) publish_mode: PublishMode,
    pub(crate) path: PortPath,
    pub(crate) backends: Vec<Backend>,
    /// Why no connection can reach the tasks from where the forwarder is.
    pub(crate) blocked: Option<String>,
}

impl Route {
    pub(crate) fn status(&self, state: PortState, message: &str) -> PortStatus {
        PortStatus {
            service: self.service.clone(),
            published_port: self.published,
            target_port: self.target_port,
            publish_mode: self.publish_mode,
            address: format!("127.0.0.1:{}", self.published),
            path: self.path,
            state,
            message: message.to_string(),
            backends: self.backends.iter().map(|b| b.status.clone()).collect(),
        }
    }
}

/// How long a node's engine may take to list its bridge's containers.
const NODE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Keeps clients and process IDs between rounds.
pub(crate) struct Discovery {
    engine: HostEngine,
    name: ClusterName,
    manager: ManagerLink,
    node_clients: HashMap<(String, Option<std::net::SocketAddr>), Docker>,
    /// Each node's last answer about its bridge: a round in which it is slow
    /// to answer keeps it, and its tasks stay backends meanwhile.
    bridges_known: HashMap<String, HashMap<String, IpAddr>>,
    /// By node container ID: the process the engine named, and its network
    /// namespace, opened once and held (see `netns`).
    namespaces: HashMap<String, (i32, Arc<NodeNamespace>)>,
    /// Whether the forwarder shares the host's process IDs and may enter
    /// the nodes' namespaces (not where it sits on the cluster network).
    enter_nodes: bool,
}

impl Discovery {
    pub(crate) fn new(engine: HostEngine, name: ClusterName, enter_nodes: bool) -> Self {
        Discovery {
            enter_nodes,
            manager: ManagerLink::new(&engine, &name),
            engine,
            name,
            node_clients: HashMap::new(),
            bridges_known: HashMap::new(),
            namespaces: HashMap::new(),
        }
    }

    /// The routes of every published TCP port; and whether IPVS is there.
    pub(crate) async fn routes(&mut self) -> Result<(bool, Vec<Route>)> {
        let cluster = Cluster::open(&self.engine, &self.name).await?;
        let running: Vec<&NodeContainer> = cluster.nodes.iter().filter(|n| n.running).collect();
        // A node whose process has changed (its container restarted) is
        // asked for again; one whose process is gone is forgotten.
        self.namespaces
            .retain(|id, (pid, namespace)| running.iter().any(|n| &n.id == id) && namespace.holds(*pid));
        self.bridges_known
            .retain(|host, _| running.iter().any(|n| &n.node.hostname() == host));
        for node in running.iter().filter(|_| self.enter_nodes) {
            if self.namespaces.contains_key(&node.id) {
                continue;
            }
            let info = self
                .engine
                .docker
                .inspect_container(&node.id, None)
                .await
                .with_context(|| format!("cannot inspect {}", node.name))?;
            let Some(pid) = info.state.and_then(|s| s.pid).filter(|p| *p > 0).map(|p| p as i32) else {
                continue;
            };
            match NodeNamespace::open(pid) {
                Ok(namespace) => {
                    self.namespaces.insert(node.id.clone(), (pid, Arc::new(namespace)));
                }
                Err(error) => tracing::debug!(node = %node.name, %error, "cannot open its network namespace"),
            }
        }
        let ipvs = if self.enter_nodes {
            self.namespaces.values().any(|(pid, _)| has_ipvs(*pid))
        } else {
            // Every namespace shows IPVS once the kernel has it: ours too.
            std::path::Path::new("/proc/net/ip_vs").exists()
        };

        let swarm = self.manager.read(false).await?;
        let mut routes = Vec::new();
        // Nodes asked about their bridge this round: once each.
        let mut asked: std::collections::HashSet<String> = std::collections::HashSet::new();
        for service in &swarm.services {
            let name = SwarmView::service_name(service).to_string();
            let ports = service
                .endpoint
                .as_ref()
                .and_then(|e| e.ports.clone())
                .unwrap_or_default();
            let running_tasks: Vec<_> = swarm
                .tasks
                .iter()
                .filter(|t| Some(&t.service_id) == service.id.as_ref() && t.is_running())
                .collect();
            for port in ports {
                if port.protocol.unwrap_or(EndpointPortConfigProtocolEnum::TCP) != EndpointPortConfigProtocolEnum::TCP {
                    continue;
                }
                let (Some(published), Some(target_port)) = (port.published_port, port.target_port) else {
                    continue;
                };
                let (published, target_port) = (published as u16, target_port as u16);
                let host_mode = port.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST);
                let path = path_for(host_mode, ipvs);
                let blocked = (path == PortPath::TaskDirect && !self.enter_nodes).then(|| {
                    format!(
                        "{name}: the engine's kernel has no IPVS (no routing mesh) and the forwarder cannot enter its nodes there; publish the port in host mode (--publish mode=host,published={published},target={target_port})"
                    )
                });
                let mut backends = Vec::new();
                for task in &running_tasks {
                    let host = &task.hostname;
                    let Some(node) = cluster.container_of(host).filter(|n| n.running && blocked.is_none()) else {
                        continue;
                    };
                    let target = if path == PortPath::TaskDirect {
                        if asked.insert(host.clone())
                            && let Ok(map) = self.gateway_bridge(&cluster, node).await
                        {
                            self.bridges_known.insert(host.clone(), map);
                        }
                        let ip = self.bridges_known.get(host).and_then(|map| map.get(&task.container));
                        let (Some(ip), Some((_, namespace))) = (ip, self.namespaces.get(&node.id)) else {
                            continue;
                        };
                        Target::InNode {
                            namespace: namespace.clone(),
                            address: SocketAddr::new(*ip, target_port),
                        }
                    } else {
                        let Some(ip) = node.address else { continue };
                        Target::Direct(SocketAddr::new(IpAddr::V4(ip), published))
                    };
                    let address = match &target {
                        Target::Direct(a) | Target::InNode { address: a, .. } => a.to_string(),
                    };
                    backends.push(Backend {
                        status: BackendStatus {
                            task: task.name.clone(),
                            node: host.clone(),
                            address,
                            ..Default::default()
                        },
                        target,
                    });
                }
                backends.sort_by(|a, b| a.status.task.cmp(&b.status.task));
                routes.push(Route {
                    service: name.clone(),
                    published,
                    target_port,
                    publish_mode: if host_mode {
                        PublishMode::Host
                    } else {
                        PublishMode::Ingress
                    },
                    path,
                    backends,
                    blocked,
                });
            }
        }
        // Host ports a cluster file forwards to a port of a node.
        for forward in cluster.forwards().await? {
            let target = cluster
                .container_of(&forward.node)
                .filter(|n| n.running)
                .and_then(|n| n.address)
                .map(|ip| SocketAddr::new(IpAddr::V4(ip), forward.port));
            routes.push(Route {
                service: format!("{}:{}", forward.node, forward.port),
                published: forward.host,
                target_port: forward.port,
                publish_mode: PublishMode::Forward,
                path: PortPath::NodePort,
                backends: target
                    .map(|address| Backend {
                        status: BackendStatus {
                            task: "-".into(),
                            node: forward.node.clone(),
                            address: address.to_string(),
                            ..Default::default()
                        },
                        target: Target::Direct(address),
                    })
                    .into_iter()
                    .collect(),
                blocked: None,
            });
        }
        routes.sort_by_key(|r| r.published);
        Ok((ipvs, routes))
    }

    /// Task containers' addresses on a node's docker_gwbridge, by container ID.
    async fn gateway_bridge(&mut self, cluster: &Cluster, node: &NodeContainer) -> Result<HashMap<String, IpAddr>> {
        let key = (node.node.hostname(), node.api_endpoint());
        let client = match self.node_clients.get(&key) {
            Some(client) => client.clone(),
            None => {
                let client = cluster.node_engine(node)?;
                self.node_clients.insert(key.clone(), client.clone());
                client
            }
        };
        // A node killed while it was being asked never answers on a kept
        // connection: without a bound, one read would stall the forwarder's
        // rounds (its counts and backends) for the client's whole timeout.
        // A node only slow to answer keeps its last answer (see `routes`).
        let asked = tokio::time::timeout(NODE_READ_TIMEOUT, client.inspect_network("docker_gwbridge", None)).await;
        let network = match asked {
            Ok(Ok(network)) => network,
            Ok(Err(e)) => {
                self.node_clients.remove(&key);
                return Err(e).context("cannot inspect docker_gwbridge");
            }
            // Slow, not gone (a node that is gone is not asked): its client
            // and its last answer stay.
            Err(_) => {
                return Err(Error::Other(format!(
                    "{} did not answer within {}s",
                    node.name,
                    NODE_READ_TIMEOUT.as_secs()
                )));
            }
        };
        Ok(network
            .containers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, endpoint)| {
                let ip = endpoint.ipv4_address?.split('/').next()?.parse().ok()?;
                Some((id, ip))
            })
            .collect())
    }
}

/// How connections for a published port reach its tasks: ports published
/// in host mode answer on the nodes running a task; ingress ports through
/// the routing mesh where the kernel has IPVS, else only inside each node.
fn path_for(host_mode: bool, ipvs: bool) -> PortPath {
    match (host_mode, ipvs) {
        (true, _) => PortPath::HostMode,
        (false, true) => PortPath::RoutingMesh,
        (false, false) => PortPath::TaskDirect,
    }
}

/// IPVS shows itself in /proc/net/ip_vs of every network namespace once
/// the kernel has it; /proc/PID/net is the namespace of that process.
fn has_ipvs(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}/net/ip_vs")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_follows_the_publish_mode_and_the_kernel() {
        assert_eq!(path_for(true, false), PortPath::HostMode);
        assert_eq!(path_for(true, true), PortPath::HostMode);
        assert_eq!(path_for(false, true), PortPath::RoutingMesh);
        assert_eq!(path_for(false, false), PortPath::TaskDirect);
    }

    #[test]
    fn ipvs_is_seen_in_proc() {
        // This machine's kernel has no IPVS; a missing process has none either.
        let own = std::process::id() as i32;
        assert_eq!(has_ipvs(own), std::path::Path::new("/proc/net/ip_vs").exists());
        assert!(!has_ipvs(i32::MAX));
    }
}
