//! What the forwarder writes about itself and `swarmlab ports` reads: the
//! shape of its status file, also the JSON of `swarmlab ports --json`.

use serde::{Deserialize, Serialize};

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

/// How old a status may be before it says the forwarder is stuck: a round
/// writes one every second or so; a slow one (a swarm read gives up after
/// 20 s, a node's after 3 s each) takes well under a minute.
const STALE_AFTER_SECS: u64 = 60;

impl ForwarderStatus {
    /// Its age in seconds at `now` (seconds since the Unix epoch), when it
    /// is older than a working forwarder leaves it: its counts and backends
    /// are then those of that moment.
    pub fn stale_at(&self, now: u64) -> Option<u64> {
        let age = now.saturating_sub(self.updated);
        (age > STALE_AFTER_SECS).then_some(age)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub service: String,
    pub published_port: u16,
    pub target_port: u16,
    pub publish_mode: PublishMode,
    /// The host address that answers, e.g. 127.0.0.1:8080.
    pub address: String,
    pub path: PortPath,
    pub state: PortState,
    pub message: String,
    pub backends: Vec<BackendStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// The task, as `docker service ps` names it (service.slot).
    pub task: String,
    pub node: String,
    /// Where connections go, as seen from the node (or the host).
    pub address: String,
    /// Connections forwarded to it, and those it did not take, since it
    /// became a backend.
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub failures: u64,
    /// Bytes relayed to it and from it.
    #[serde(default)]
    pub bytes_in: u64,
    #[serde(default)]
    pub bytes_out: u64,
}

/// How a port is published in the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    /// `-p PORT:TARGET`: every node answers (the routing mesh).
    Ingress,
    /// `--publish mode=host`: the nodes running a task answer.
    Host,
    /// A cluster file's `[[ports]]`: a host port to a port of a node.
    Forward,
}

/// The way connections for a port reach their backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortPath {
    /// A node's published port, balanced by Swarm's routing mesh (IPVS).
    RoutingMesh,
    /// Each task, from inside its node's network namespace (no IPVS).
    TaskDirect,
    /// The nodes running a task of a host-mode port.
    HostMode,
    /// A port of one node.
    NodePort,
}

/// What the forwarder does with a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    Forwarding,
    /// Something else on the host listens on 127.0.0.1:PORT.
    PortTaken,
    /// No task runs to forward to yet.
    NoBackends,
    /// It cannot be forwarded on this engine as published (no routing
    /// mesh, and the forwarder may not reach tasks directly there).
    Blocked,
}

impl PortState {
    /// Whether it stays so until something is changed by hand, rather
    /// than by the swarm starting tasks.
    pub(crate) fn is_final(self) -> bool {
        matches!(self, PortState::PortTaken | PortState::Blocked)
    }
}

/// The names the enums above have in JSON, for tables and logs too.
macro_rules! named {
    ($kind:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $kind {
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(PublishMode { Ingress => "ingress", Host => "host", Forward => "forward" });
named!(PortPath { RoutingMesh => "routing-mesh", TaskDirect => "task-direct", HostMode => "host-mode", NodePort => "node-port" });
named!(PortState { Forwarding => "forwarding", PortTaken => "port-taken", NoBackends => "no-backends", Blocked => "blocked" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_no_round_has_written_for_a_while_is_stale() {
        let status = ForwarderStatus {
            updated: 1_000,
            ..Default::default()
        };
        assert_eq!(status.stale_at(1_001), None);
        assert_eq!(status.stale_at(1_000 + STALE_AFTER_SECS), None);
        assert_eq!(status.stale_at(1_100), Some(100));
        // A clock behind the forwarder's is not news.
        assert_eq!(status.stale_at(900), None);
    }

    #[test]
    fn states_have_the_same_names_in_json_and_in_tables() {
        for (json, shown) in [
            (
                serde_json::to_value(PortPath::RoutingMesh),
                PortPath::RoutingMesh.to_string(),
            ),
            (
                serde_json::to_value(PortPath::TaskDirect),
                PortPath::TaskDirect.to_string(),
            ),
            (serde_json::to_value(PortPath::HostMode), PortPath::HostMode.to_string()),
            (serde_json::to_value(PortPath::NodePort), PortPath::NodePort.to_string()),
            (
                serde_json::to_value(PortState::Forwarding),
                PortState::Forwarding.to_string(),
            ),
            (
                serde_json::to_value(PortState::PortTaken),
                PortState::PortTaken.to_string(),
            ),
            (
                serde_json::to_value(PortState::NoBackends),
                PortState::NoBackends.to_string(),
            ),
            (serde_json::to_value(PortState::Blocked), PortState::Blocked.to_string()),
            (
                serde_json::to_value(PublishMode::Ingress),
                PublishMode::Ingress.to_string(),
            ),
            (serde_json::to_value(PublishMode::Host), PublishMode::Host.to_string()),
            (
                serde_json::to_value(PublishMode::Forward),
                PublishMode::Forward.to_string(),
            ),
        ] {
            assert_eq!(json.unwrap(), serde_json::Value::String(shown));
        }
    }
}
