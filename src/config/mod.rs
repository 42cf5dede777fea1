//! Cluster files: a cluster described in TOML, checked completely before
//! anything is created.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::naming::{self, ClusterName, NodeName, Role};
use crate::node_choice::{Choice, EngineVersion};

mod settings;
mod text;

pub use settings::{NodeSettings, Settings};

use text::{duration_text, key_position, position};

/// What a cluster file says. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub name: Option<String>,
    pub managers: Option<u32>,
    pub workers: Option<u32>,
    pub image: Option<String>,
    /// The Docker engine version of every node (instead of `image`).
    pub engine: Option<EngineVersion>,
    #[serde(default, with = "duration_text")]
    pub heartbeat: Option<Duration>,
    #[serde(default, with = "duration_text")]
    pub wait: Option<Duration>,
    /// Images on the host engine to load into every node.
    #[serde(default)]
    pub images: Vec<String>,
    /// Settings of every node.
    #[serde(default)]
    pub defaults: NodeSettings,
    /// Settings of each role, over the defaults: [role.manager], [role.worker].
    #[serde(default)]
    pub role: RoleSettings,
    /// Settings of single nodes (by hostname), over their role's.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeSettings>,
    /// Host ports forwarded to a port of a node.
    #[serde(default)]
    pub ports: Vec<Forward>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSettings {
    #[serde(default)]
    pub manager: NodeSettings,
    #[serde(default)]
    pub worker: NodeSettings,
}

/// A host port on 127.0.0.1 forwarded to `port` of `node`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub host: u16,
    pub node: String,
    pub port: u16,
}

impl Forward {
    /// The form the forwarder takes on its command line: HOST:NODE:PORT.
    pub(crate) fn to_arg(&self) -> String {
        format!("{}:{}:{}", self.host, self.node, self.port)
    }

    pub fn from_arg(text: &str) -> Result<Self> {
        let invalid = || Error::invalid(format!("invalid forward {text:?}: write HOST_PORT:NODE:PORT"));
        let mut parts = text.split(':');
        let (Some(host), Some(node), Some(port), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Forward {
            host: host.parse().map_err(|_| invalid())?,
            node: node.to_string(),
            port: port.parse().map_err(|_| invalid())?,
        })
    }
}

impl ClusterFile {
    /// Reads and checks a cluster file; errors name the line and column.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("cannot read cluster file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|message| Error::invalid(format!("{}:{message}", path.display())))
    }

    /// Parses and checks; the error is "LINE:COLUMN: what was expected".
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let file: ClusterFile = toml::from_str(text).map_err(|error| {
            let (line, column) = error.span().map(|s| position(text, s.start)).unwrap_or((1, 1));
            format!("{line}:{column}: {}", crate::error::one_line(error.message()))
        })?;
        file.check().map_err(|(key, message)| {
            let (line, column) = key_position(text, &key);
            format!("{line}:{column}: {message}")
        })?;
        Ok(file)
    }

    /// Checks what the syntax cannot: counts, names, limits, ports. The
    /// error names the key it is about.
    fn check(&self) -> std::result::Result<(), (String, String)> {
        if let Some(name) = &self.name {
            ClusterName::new(name).map_err(|e| ("name".into(), e.to_string()))?;
        }
        let managers = self.managers.unwrap_or(1);
        let workers = self.workers.unwrap_or(3);
        naming::check_counts(managers, workers).map_err(|e| {
            let key = if managers == 0 || managers > naming::MAX_MANAGERS {
                "managers"
            } else {
                "workers"
            };
            (key.to_string(), e.to_string())
        })?;
        const ONE_OF: &str = "give a node image or an engine version, not both";
        if self.image.is_some() && self.engine.is_some() {
            return Err(("engine".into(), ONE_OF.into()));
        }
        let sections = [
            ("defaults".to_string(), &self.defaults),
            ("role.manager".to_string(), &self.role.manager),
            ("role.worker".to_string(), &self.role.worker),
        ];
        let nodes = self.nodes.iter().map(|(host, s)| (format!("nodes.{host}"), s));
        for (key, settings) in sections.into_iter().chain(nodes) {
            if settings.image.is_some() && settings.engine.is_some() {
                return Err((format!("{key}.engine"), ONE_OF.into()));
            }
            if let Some(memory) = settings.memory
                && memory < 64 << 20
            {
                return Err((key, "memory must be at least 64MiB: a node runs a Docker engine".into()));
            }
            if let Some(cpus) = settings.cpus
                && !(cpus > 0.0 && cpus <= 1024.0)
            {
                return Err((key, format!("cpus must be a positive number of CPUs, not {cpus}")));
            }
            if let Some(arg) = settings.dockerd_args.iter().find(|a| opens_the_api(a)) {
                return Err((
                    format!("{key}.dockerd_args"),
                    format!(
                        "dockerd_args may not contain {arg:?}: swarmlab sets where and how a node's engine API listens (TLS with client certificates), and this would open or weaken it"
                    ),
                ));
            }
        }
        for host in self.nodes.keys() {
            self.check_node(host, managers, workers)
                .map_err(|m| (format!("nodes.{host}"), m))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for forward in &self.ports {
            self.check_node(&forward.node, managers, workers)
                .map_err(|m| ("ports".to_string(), m))?;
            if forward.host == 0 || forward.port == 0 {
                return Err((
                    "ports".into(),
                    "port 0 is not a port: give the host port and the node's port, 1 to 65535".into(),
                ));
            }
            if !seen.insert(forward.host) {
                return Err(("ports".into(), format!("host port {} is forwarded twice", forward.host)));
            }
        }
        Ok(())
    }

    fn check_node(&self, host: &str, managers: u32, workers: u32) -> std::result::Result<(), String> {
        let node: NodeName = host.parse().map_err(|e: Error| e.to_string())?;
        let count = if node.role == Role::Manager { managers } else { workers };
        if node.index > count {
            return Err(format!(
                "there is no node {host}: the cluster has {count} {}s",
                node.role
            ));
        }
        Ok(())
    }

    /// How the nodes' image is chosen, if the file says at its top.
    pub(crate) fn choice(&self) -> Option<Choice> {
        Choice::from_parts(self.image.as_ref(), self.engine.as_ref())
    }

    pub(crate) fn settings(&self) -> Settings {
        Settings {
            defaults: self.defaults.clone(),
            managers: self.role.manager.clone(),
            workers: self.role.worker.clone(),
            nodes: self.nodes.clone(),
        }
    }
}

/// Whether a dockerd argument would change where or how the engine API
/// listens: `-H`/`--host` add listeners (e.g. plain TCP on every
/// interface), also inside a group of short flags (`-DH`), `--tls*` change
/// or drop the client-certificate check, `--config-file` could say either
/// in a daemon.json.
fn opens_the_api(arg: &str) -> bool {
    let flag = arg.split('=').next().unwrap_or(arg);
    let short_group = flag.strip_prefix('-').filter(|rest| !rest.starts_with('-'));
    flag == "--host"
        || flag == "--config-file"
        || flag.starts_with("--tls")
        || short_group.is_some_and(|g| g.contains('H'))
}

/// A commented cluster file with every key.
pub const EXAMPLE: &str = include_str!("../../assets/cluster.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_valid_and_complete() {
        let file = ClusterFile::parse(EXAMPLE).expect("the example parses");
        assert_eq!(file.managers, Some(3));
        assert!(!file.nodes.is_empty() && !file.ports.is_empty() && !file.images.is_empty());
        let settings = file.settings();
        let worker1 = settings.for_node("worker-1".parse().unwrap());
        assert_eq!(worker1.labels.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!(
            worker1.labels.get("zone").map(String::as_str),
            Some("lab"),
            "defaults flow down"
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let unknown = ClusterFile::parse("managers = 1\nflavour = \"x\"\n").unwrap_err();
        assert!(unknown.starts_with("2:1: "), "{unknown}");
        assert!(unknown.contains("flavour"), "{unknown}");
        let wrong_type = ClusterFile::parse("workers = \"three\"\n").unwrap_err();
        assert!(wrong_type.starts_with("1:11: "), "{wrong_type}");
        let impossible = ClusterFile::parse("workers = 2\n\n[nodes.worker-5]\ncpus = 1\n").unwrap_err();
        assert!(impossible.starts_with("3:1: there is no node worker-5"), "{impossible}");
        let small = ClusterFile::parse("[defaults]\nmemory = \"1MiB\"\n").unwrap_err();
        assert!(small.contains("at least 64MiB"), "{small}");
        let zero = ClusterFile::parse("managers = 0\n").unwrap_err();
        assert!(zero.starts_with("1:1: a cluster needs at least one manager"), "{zero}");
    }

    #[test]
    fn arguments_that_would_open_a_nodes_api_are_refused_where_written() {
        let text = "workers = 2\n\n[defaults]\ndockerd_args = [\"--debug\"]\n\n[role.worker]\nmemory = \"1g\"\ndockerd_args = [\"-H\", \"tcp://0.0.0.0:2375\"]\n";
        let refused = ClusterFile::parse(text).unwrap_err();
        assert!(
            refused.starts_with("8:1: dockerd_args may not contain \"-H\""),
            "{refused}"
        );
        for arg in [
            "--host=tcp://0.0.0.0:2375",
            "--host",
            "-Htcp://x",
            "-DH",
            "-DHtcp://0.0.0.0:2375",
            "--tlsverify=false",
            "--tls=false",
            "--tlscacert=/x",
            "--config-file=/etc/open.json",
        ] {
            let text = format!("[nodes.worker-1]\ndockerd_args = [{arg:?}]\n");
            let refused = ClusterFile::parse(&text).unwrap_err();
            assert!(
                refused.starts_with("2:1: dockerd_args may not contain"),
                "{arg}: {refused}"
            );
        }
        for arg in [
            "--debug",
            "--log-level=warn",
            "--host-gateway-ip=172.17.0.1",
            "--max-concurrent-downloads=1",
        ] {
            let text = format!("[defaults]\ndockerd_args = [{arg:?}]\n");
            assert!(ClusterFile::parse(&text).is_ok(), "{arg} is harmless");
        }
    }

    #[test]
    fn port_zero_is_refused() {
        for (host, port) in [(0, 80), (8080, 0)] {
            let text = format!("workers = 1\n\n[[ports]]\nhost = {host}\nnode = \"worker-1\"\nport = {port}\n");
            let refused = ClusterFile::parse(&text).unwrap_err();
            assert!(refused.starts_with("3:1: port 0 is not a port"), "{refused}");
        }
    }

    #[test]
    fn an_image_or_an_engine_per_section_not_both() {
        let both = ClusterFile::parse("image = \"a:1\"\nengine = \"28\"\n").unwrap_err();
        assert!(
            both.starts_with("2:1: give a node image or an engine version"),
            "{both}"
        );
        let in_section = ClusterFile::parse("[role.worker]\nimage = \"a:1\"\nengine = \"28\"\n").unwrap_err();
        assert!(in_section.starts_with("3:1: give a node image"), "{in_section}");
        let bad = ClusterFile::parse("[nodes.worker-1]\nengine = \"twenty\"\n").unwrap_err();
        assert!(bad.starts_with("2:10: invalid engine version"), "{bad}");
        let mixed = ClusterFile::parse("engine = \"20.10\"\n[role.worker]\nengine = \"28\"\n").unwrap();
        assert_eq!(mixed.choice().unwrap().to_string(), "engine 20.10");
        let worker = mixed.settings().for_node("worker-1".parse().unwrap());
        assert_eq!(worker.choice().unwrap().to_string(), "engine 28");
    }

    #[test]
    fn forwards_round_trip() {
        let forward = Forward::from_arg("9000:worker-1:80").unwrap();
        assert_eq!(forward.to_arg(), "9000:worker-1:80");
        assert!(Forward::from_arg("9000:worker-1").is_err());
    }
}
