//! The Docker engines swarmlab can build node images of, offline, from
//! Debian's packages: which suite carries which engine, and how a version
//! asked for (`--engine 28`, `28.5`, `20.10.24`) matches one.

use crate::error::{Error, Result};
use crate::node_choice::EngineVersion;

/// A Debian suite's Docker engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Release {
    /// The engine's major.minor version, the node image's tag.
    pub(crate) engine: &'static str,
    pub(crate) suite: &'static str,
    /// From trixie on, the docker CLI is its own package; nodes carry it so
    /// that `docker exec NODE docker ...` works on every version.
    pub(crate) separate_cli: bool,
}

/// Oldest first; the last is the newest, built when no version is asked.
pub(crate) const RELEASES: &[Release] = &[
    Release {
        engine: "20.10",
        suite: "bookworm",
        separate_cli: false,
    },
    Release {
        engine: "26.1",
        suite: "trixie",
        separate_cli: true,
    },
    Release {
        engine: "28.5",
        suite: "sid",
        separate_cli: true,
    },
];

/// The release to build for `asked`; the newest when None.
pub(crate) fn release_for(asked: Option<&EngineVersion>) -> Result<Release> {
    let Some(asked) = asked else {
        return Ok(*RELEASES.last().expect("at least one release"));
    };
    RELEASES
        .iter()
        .rev()
        .find(|r| asked.is_met_by(&EngineVersion::parse(r.engine).expect("valid table")))
        .copied()
        .ok_or_else(|| {
            Error::invalid(format!(
                "no Debian suite carries Docker engine {asked}: swarmlab builds {} from Debian's packages; for another engine, pass an image of your own with --image",
                known()
            ))
        })
}

/// The versions the builder knows, for messages.
pub(crate) fn known() -> String {
    RELEASES.iter().map(|r| r.engine).collect::<Vec<_>>().join(", ")
}

/// The version in `dockerd --version`'s line ("Docker version 28.5.2+dfsg3,
/// build ...").
pub(crate) fn from_version_line(line: &str) -> Option<EngineVersion> {
    let version = line.trim().strip_prefix("Docker version ")?.split(',').next()?;
    EngineVersion::parse(version).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> EngineVersion {
        EngineVersion::parse(text).unwrap()
    }

    #[test]
    fn dockerd_says_its_version() {
        assert_eq!(
            from_version_line("Docker version 28.5.2+dfsg3, build 4f1d3b1\n"),
            Some(version("28.5.2"))
        );
        assert_eq!(from_version_line("dockerd: not found"), None);
    }

    #[test]
    fn each_version_maps_to_the_suite_that_carries_it() {
        assert_eq!(release_for(None).unwrap().engine, "28.5");
        assert_eq!(release_for(Some(&version("20"))).unwrap().suite, "bookworm");
        assert_eq!(release_for(Some(&version("26.1"))).unwrap().suite, "trixie");
        assert!(release_for(Some(&version("28"))).unwrap().separate_cli);
        let unknown = release_for(Some(&version("27"))).unwrap_err().to_string();
        assert!(
            unknown.contains("20.10, 26.1, 28.5") && unknown.contains("--image"),
            "{unknown}"
        );
    }
}
