//! What a create is asked for: flags over a cluster file over defaults,
//! assembled here (not merged in the CLI) and checked as a whole, as k3d
//! does: override, then process, then validate.

use std::time::Duration;

use crate::config::{ClusterFile, Forward, Settings};
use crate::error::Result;
use crate::naming::{self, ClusterName};
use crate::node_image::{Choice, EngineVersion};

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub name: ClusterName,
    pub managers: u32,
    pub workers: u32,
    /// How the nodes' image is chosen; None picks the default (see
    /// `node_image::resolve`). A cluster file's sections may choose others
    /// for some nodes (`settings`).
    pub node_image: Option<Choice>,
    /// Swarm's dispatcher heartbeat; None keeps Swarm's default (5 s).
    pub heartbeat: Option<Duration>,
    /// How long to wait for the whole cluster to be Ready.
    pub wait: Duration,
    /// Keep what was made when creation fails.
    pub retain: bool,
    /// A fixed host port for the first manager's engine API.
    pub api_port: Option<u16>,
    /// Per-role and per-node settings from a cluster file.
    pub settings: Settings,
    /// Images on the host engine to load into every node.
    pub images: Vec<String>,
    /// Host ports forwarded to ports of nodes.
    pub forwards: Vec<Forward>,
    /// Node engine APIs without TLS: anyone on this machine can use them.
    pub insecure: bool,
}

impl CreateOptions {
    /// The defaults: one manager, three workers, Swarm's heartbeat, two
    /// minutes to be Ready, TLS.
    pub(crate) fn new(name: ClusterName) -> Self {
        CreateOptions {
            name,
            managers: 1,
            workers: 3,
            node_image: None,
            heartbeat: None,
            wait: Duration::from_secs(120),
            retain: false,
            api_port: None,
            settings: Settings::default(),
            images: Vec::new(),
            forwards: Vec::new(),
            insecure: false,
        }
    }
}

/// How long a cluster of `nodes` may take to be Ready when nothing says:
/// two minutes, or two seconds a node past 60 (a create costs about a
/// CPU-second a node, and two cores at a hundred nodes take their time).
pub(crate) fn default_wait(nodes: u32) -> Duration {
    Duration::from_secs(120).max(Duration::from_secs(2) * nodes)
}

/// What the command line says; None where it says nothing.
#[derive(Debug, Clone, Default)]
pub struct CreateFlags {
    /// --name (or SWARMLAB_CLUSTER).
    pub name: Option<String>,
    pub managers: Option<u32>,
    pub workers: Option<u32>,
    pub image: Option<String>,
    /// --engine: a swarmlab node image of this engine version.
    pub engine: Option<EngineVersion>,
    pub heartbeat: Option<Duration>,
    pub wait: Option<Duration>,
    pub retain: bool,
    pub api_port: Option<u16>,
    pub insecure: bool,
}

impl CreateOptions {
    /// Flags win over the file, the file over the defaults; the name falls
    /// back to `default_name`. The result is checked as a whole.
    pub fn assemble(flags: CreateFlags, file: &ClusterFile, default_name: &str) -> Result<Self> {
        let name = flags
            .name
            .or_else(|| file.name.clone())
            .unwrap_or_else(|| default_name.to_string());
        let mut options = CreateOptions::new(ClusterName::new(&name)?);
        options.managers = flags.managers.or(file.managers).unwrap_or(options.managers);
        options.workers = flags.workers.or(file.workers).unwrap_or(options.workers);
        options.node_image = Choice::from_parts(flags.image.as_ref(), flags.engine.as_ref()).or_else(|| file.choice());
        options.heartbeat = flags.heartbeat.or(file.heartbeat);
        options.wait = flags
            .wait
            .or(file.wait)
            .unwrap_or_else(|| default_wait(options.managers + options.workers));
        options.retain = flags.retain;
        options.api_port = flags.api_port;
        options.settings = file.settings();
        options.images = file.images.clone();
        options.forwards = file.ports.clone();
        options.insecure = flags.insecure;
        options.validate()?;
        Ok(options)
    }

    /// What no create can do: counts out of bounds, an unknown
    /// SWARMLAB_PRIVILEGED.
    pub(crate) fn validate(&self) -> Result<()> {
        naming::check_counts(self.managers, self.workers)?;
        crate::node_container::privileged_choice()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ClusterFile {
        ClusterFile::parse(text).unwrap()
    }

    #[test]
    fn defaults_when_nothing_is_said() {
        let options = CreateOptions::assemble(CreateFlags::default(), &ClusterFile::default(), "swarmlab").unwrap();
        assert_eq!(options.name.as_str(), "swarmlab");
        assert_eq!((options.managers, options.workers), (1, 3));
        assert_eq!(options.wait, Duration::from_secs(120));
        assert_eq!(options.heartbeat, None);
        assert!(!options.insecure && !options.retain);
    }

    #[test]
    fn large_clusters_get_longer_to_be_ready_unless_told() {
        assert_eq!(default_wait(4), Duration::from_secs(120));
        assert_eq!(default_wait(60), Duration::from_secs(120));
        assert_eq!(default_wait(101), Duration::from_secs(202));
        let flags = CreateFlags {
            workers: Some(100),
            ..Default::default()
        };
        let big = CreateOptions::assemble(flags.clone(), &ClusterFile::default(), "lab").unwrap();
        assert_eq!(big.wait, Duration::from_secs(202));
        let told = CreateFlags {
            wait: Some(Duration::from_secs(60)),
            ..flags
        };
        let told = CreateOptions::assemble(told, &ClusterFile::default(), "lab").unwrap();
        assert_eq!(told.wait, Duration::from_secs(60));
    }

    #[test]
    fn the_file_over_the_defaults_and_flags_over_the_file() {
        let lab = file("name = \"lab\"\nmanagers = 3\nworkers = 5\nheartbeat = \"2s\"\nimages = [\"a:1\"]\n");
        let from_file = CreateOptions::assemble(CreateFlags::default(), &lab, "swarmlab").unwrap();
        assert_eq!(from_file.name.as_str(), "lab");
        assert_eq!((from_file.managers, from_file.workers), (3, 5));
        assert_eq!(from_file.heartbeat, Some(Duration::from_secs(2)));
        assert_eq!(from_file.images, ["a:1"]);
        let flags = CreateFlags {
            name: Some("mine".into()),
            workers: Some(1),
            heartbeat: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let over = CreateOptions::assemble(flags, &lab, "swarmlab").unwrap();
        assert_eq!(over.name.as_str(), "mine");
        assert_eq!(
            (over.managers, over.workers),
            (3, 1),
            "what the flags leave alone comes from the file"
        );
        assert_eq!(over.heartbeat, Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_whole_is_checked() {
        let too_many = CreateFlags {
            managers: Some(10),
            ..Default::default()
        };
        let refused = CreateOptions::assemble(too_many, &ClusterFile::default(), "swarmlab").unwrap_err();
        assert!(refused.to_string().contains("at most 9 managers"), "{refused}");
        let bad_name = CreateFlags {
            name: Some("Bad_Name".into()),
            ..Default::default()
        };
        assert!(CreateOptions::assemble(bad_name, &ClusterFile::default(), "swarmlab").is_err());
    }
}
