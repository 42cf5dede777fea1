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
//! `swarmlab ports` reads; its container, and that state's shape, are
//! `forwarder_container`'s.

mod counters;
mod discovery;
mod forwarder;
mod log;
// Entering a namespace is Linux's; elsewhere a stand-in says so.
#[cfg(linux_client)]
mod netns;
#[cfg(not(linux_client))]
#[path = "netns_elsewhere.rs"]
mod netns;
mod pass;
mod publish;
mod relay;

pub use forwarder::{Limits, serve};
pub use pass::pass;
