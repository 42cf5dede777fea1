//! Ports published in a cluster's swarm, answered on the host's 127.0.0.1.
//!
//! A forwarder runs next to every cluster, as a container of the host
//! engine (so it outlives the swarmlab command and comes back with the
//! engine). It watches the swarm and, for every published TCP port, listens
//! on 127.0.0.1:PORT and forwards each connection to one of the service's
//! running tasks. How it reaches them depends on the host:
//!
//! - where the kernel has IPVS, Swarm's routing mesh works: it connects to
//!   the published port of the nodes and lets the mesh balance;
//! - where it has not (no IPVS, the mesh answers nowhere), it connects to
//!   each task directly, from inside the network namespace of the task's
//!   node, at the task's address on that node's docker_gwbridge;
//! - ports published in host mode are answered by the nodes running a task.
//!
//! The forwarder writes its state to a file in its container, which
//! `swarmlab ports` reads.

pub mod container;
mod discovery;
mod forwarder;
mod netns;

use serde::{Deserialize, Serialize};

pub use forwarder::{Limits, serve};

/// Where the forwarder keeps its state inside its container.
pub const STATUS_PATH: &str = "/run/swarmlab/ports.json";

/// What the forwarder is doing, as `swarmlab ports` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ForwarderStatus {
    /// Seconds since the Unix epoch when this was written.
    pub updated: u64,
    /// Whether the nodes' kernel has IPVS, so that the routing mesh works.
    pub ipvs: bool,
    pub ports: Vec<PortStatus>,
    /// Why the swarm could not be read, when it could not.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub service: String,
    pub published_port: u16,
    pub target_port: u16,
    /// ingress or host
    pub publish_mode: String,
    /// The host address that answers, e.g. 127.0.0.1:8080.
    pub address: String,
    /// routing-mesh, task-direct or host-mode
    pub path: String,
    /// forwarding, port-taken or no-backends
    pub state: String,
    pub message: String,
    pub backends: Vec<BackendStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// The task, as `docker service ps` names it (service.slot).
    pub task: String,
    pub node: String,
    /// Where connections go, as seen from the node (or the host).
    pub address: String,
}
