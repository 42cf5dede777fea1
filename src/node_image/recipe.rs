//! What a node image build makes, wherever debootstrap runs: the suite and
//! packages, what is trimmed, the entrypoint, the image's settings and
//! tags; and what either builder keeps of debootstrap's words.

use super::releases::{self, Release};
use super::{ENGINE_LABEL, IMAGE_LABEL, REPOSITORY};
use crate::error::{Error, Result};
use crate::node_choice::EngineVersion;

pub(super) const ENTRYPOINT_PATH: &str = "/usr/local/bin/swarmlab-node-entrypoint";
const PACKAGES: &str = "docker.io,iptables,iproute2,procps,ca-certificates";
/// Not needed in a node: documentation, apt's caches, libnetwork's debug tools.
pub(super) const PRUNED: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "usr/bin/dnet",
    "usr/sbin/ovrouter",
];

/// Where `node_image::build` runs debootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Builder {
    /// Here when this machine can (root, debootstrap), else in a container.
    #[default]
    Auto,
    /// On this machine: root and debootstrap needed.
    Here,
    /// In a container on the host engine: only the engine's API needed,
    /// and a Debian mirror that the engine reaches.
    Container,
}

/// Options of `node_image::build`.
pub struct BuildOptions {
    /// The engine asked for; None builds the newest the builder knows.
    pub engine: Option<EngineVersion>,
    /// The tag; None tags `swarmlab/node:MAJOR.MINOR`, and `latest` too
    /// when no engine was asked for (the newest becomes the default).
    pub tag: Option<String>,
    pub mirror: String,
    pub builder: Builder,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            engine: None,
            tag: None,
            mirror: std::env::var("SWARMLAB_DEBIAN_MIRROR")
                .unwrap_or_else(|_| "http://deb.debian.org/debian".to_string()),
            builder: Builder::Auto,
        }
    }
}

/// What one build makes: a root file system of `release`'s suite.
pub(super) struct Recipe<'a> {
    pub(super) release: Release,
    pub(super) packages: String,
    pub(super) options: &'a BuildOptions,
    /// The progress line's name.
    pub(super) step: String,
}

impl<'a> Recipe<'a> {
    pub(super) fn new(options: &'a BuildOptions) -> Result<Self> {
        let release = releases::release_for(options.engine.as_ref())?;
        let mut packages = PACKAGES.to_string();
        if release.separate_cli {
            packages.push_str(",docker-cli");
        }
        Ok(Recipe {
            release,
            packages,
            options,
            step: format!("engine {}", release.engine),
        })
    }

    /// The built engine is the one asked for, and the image's tags for it.
    pub(super) fn tags_for(&self, actual: &EngineVersion) -> Result<Vec<String>> {
        let asked = self
            .options
            .engine
            .clone()
            .unwrap_or_else(|| EngineVersion::parse(self.release.engine).expect("valid table"));
        if !asked.is_met_by(actual) {
            return Err(Error::Other(format!(
                "Debian's {} now carries Docker engine {actual}, not {asked}: build `--engine {}` instead, or pass an image of your own with --image",
                self.release.suite,
                actual.major_minor()
            )));
        }
        Ok(match &self.options.tag {
            Some(tag) => vec![tag.clone()],
            None if self.options.engine.is_none() => vec![
                format!("{REPOSITORY}:{}", actual.major_minor()),
                format!("{REPOSITORY}:latest"),
            ],
            None => vec![format!("{REPOSITORY}:{}", actual.major_minor())],
        })
    }
}

/// The image settings of a node image: its entrypoint, the engine's data
/// volume, and the labels that `node-image ls` and `--engine` read.
pub(super) fn image_changes(version: &EngineVersion) -> Vec<String> {
    vec![
        format!("ENTRYPOINT [\"{ENTRYPOINT_PATH}\"]"),
        "VOLUME /var/lib/docker".to_string(),
        format!("LABEL {IMAGE_LABEL}=debian"),
        format!("LABEL {ENGINE_LABEL}={version}"),
    ]
}

/// The last lines a builder wrote on stderr, for an error message.
#[derive(Default)]
pub(super) struct LastLines(Vec<String>);

impl LastLines {
    pub(super) fn keep(&mut self, line: String) {
        self.0.push(line);
        if self.0.len() > 5 {
            self.0.remove(0);
        }
    }

    /// ": line / line / ...", or nothing when none was written.
    pub(super) fn tail(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            format!(": {}", self.0.join(" / "))
        }
    }
}
