//! How a node's image is chosen (an image, or the Docker engine version it
//! runs) and the images a cluster's nodes take: pure values that cluster
//! files, node plans and the image builder share.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};

/// An engine version as a user writes it: one to three numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EngineVersion(Vec<u32>);

impl EngineVersion {
    /// Parses `28`, `28.5` or `28.5.2`; also the start of what `dockerd
    /// --version` says (`28.5.2+dfsg3`).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid(format!(
                "invalid engine version {text:?}: write MAJOR[.MINOR[.PATCH]], e.g. 28 or 26.1"
            ))
        };
        let numbers = text
            .split(['+', '-', '~'])
            .next()
            .unwrap_or_default()
            .split('.')
            .map(|part| part.parse::<u32>().map_err(|_| invalid()))
            .collect::<Result<Vec<_>>>()?;
        if numbers.is_empty() || numbers.len() > 3 {
            return Err(invalid());
        }
        Ok(EngineVersion(numbers))
    }

    /// Whether `self`, as asked, is met by `actual`: `28` by any 28.x,
    /// `28.5` by any 28.5.x.
    pub(crate) fn is_met_by(&self, actual: &EngineVersion) -> bool {
        actual.0.len() >= self.0.len() && actual.0[..self.0.len()] == self.0[..]
    }

    pub(crate) fn major(&self) -> u32 {
        self.0[0]
    }

    /// MAJOR.MINOR, what node images are tagged with.
    pub(crate) fn major_minor(&self) -> String {
        let minor = self.0.get(1).copied().unwrap_or(0);
        format!("{}.{minor}", self.0[0])
    }
}

impl fmt::Display for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl serde::Serialize for EngineVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EngineVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EngineVersion::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How a node's image is chosen: as an image reference, or as the engine
/// version it must run (a swarmlab node image of that version, built
/// when missing and this machine can).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Choice {
    Image(String),
    Engine(EngineVersion),
}

impl Choice {
    /// The choice an image or an engine (the image wins) makes, if either
    /// is given.
    pub fn from_parts(image: Option<&String>, engine: Option<&EngineVersion>) -> Option<Choice> {
        match (image, engine) {
            (Some(image), _) => Some(Choice::Image(image.clone())),
            (None, Some(engine)) => Some(Choice::Engine(engine.clone())),
            (None, None) => None,
        }
    }
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Image(image) => f.write_str(image),
            Choice::Engine(version) => write!(f, "engine {version}"),
        }
    }
}

/// The images of a cluster's nodes: the one most nodes take, and those
/// chosen for some nodes apart (a cluster file's [role.*] or [nodes.*]).
#[derive(Debug, Clone)]
pub(crate) struct Images {
    pub(crate) default: String,
    pub(crate) chosen: HashMap<Choice, String>,
    /// The engine version of those images that say theirs (swarmlab's own).
    pub(crate) engines: HashMap<String, EngineVersion>,
}

impl Images {
    /// Every node takes `image`.
    pub(crate) fn single(image: &str) -> Self {
        Images {
            default: image.to_string(),
            chosen: HashMap::new(),
            engines: HashMap::new(),
        }
    }

    /// Records the engine version `image` runs, where known.
    pub(crate) fn set_engine(&mut self, image: &str, engine: Option<EngineVersion>) {
        if let Some(engine) = engine {
            self.engines.insert(image.to_string(), engine);
        }
    }

    /// The image of a node whose settings choose `choice`.
    pub(crate) fn for_node(&self, choice: Option<&Choice>) -> &str {
        choice.and_then(|c| self.chosen.get(c)).unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> EngineVersion {
        EngineVersion::parse(text).unwrap()
    }

    #[test]
    fn versions_parse_from_what_users_write_and_what_dockerd_says() {
        assert_eq!(version("28").to_string(), "28");
        assert_eq!(version("28.5.2+dfsg3").to_string(), "28.5.2");
        assert_eq!(version("20.10.24").major_minor(), "20.10");
        assert_eq!(version("29").major_minor(), "29.0");
        for bad in ["", "x", "28.", "1.2.3.4", "-1", "28.5a"] {
            assert!(EngineVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_asked_version_is_met_by_any_that_starts_with_it() {
        assert!(version("28").is_met_by(&version("28.5.2")));
        assert!(version("28.5").is_met_by(&version("28.5.2")));
        assert!(!version("28.5.1").is_met_by(&version("28.5.2")));
        assert!(!version("2").is_met_by(&version("20.10.24")));
        assert!(!version("28.5.2").is_met_by(&version("28.5")));
    }
}
