//! Where the forwarder listens: on the host's 127.0.0.1 where the engine
//! shares this machine's network, else on the cluster network behind port
//! containers.

use crate::engine::HostEngine;
use crate::error::{Error, Result};

/// Chooses where the forwarder listens; `loopback` or `published` in it
/// overrides the choice (tests, and engines that guess wrong).
pub(crate) const REACH_VAR: &str = "SWARMLAB_PORTS_REACH";

/// How the client reaches the forwarder's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The engine shares this machine's network: the forwarder listens on
    /// the host's 127.0.0.1 itself, and can enter the nodes' namespaces.
    Loopback,
    /// The engine is elsewhere (a VM, rootless, another machine): the
    /// forwarder sits on the cluster network and a port container per port
    /// is published on the engine's 127.0.0.1, which Docker Desktop and
    /// rootless engines bring to the client's.
    Published,
}

impl Reach {
    /// Loopback where the cluster network's bridge is an interface of this
    /// very machine, so that the engine's host network is ours.
    pub(super) async fn of(engine: &HostEngine, network: &bollard::models::NetworkInspect) -> Result<Reach> {
        if let Some(chosen) = Reach::chosen(std::env::var(REACH_VAR).ok().as_deref())? {
            return Ok(chosen);
        }
        let here = engine.is_local().await?
            && crate::node_container::bridge_is_here(network.id.as_deref().unwrap_or_default());
        Ok(if here { Reach::Loopback } else { Reach::Published })
    }

    /// What [`REACH_VAR`] says, if anything.
    fn chosen(value: Option<&str>) -> Result<Option<Reach>> {
        match value.unwrap_or_default() {
            "" => Ok(None),
            "loopback" => Ok(Some(Reach::Loopback)),
            "published" => Ok(Some(Reach::Published)),
            other => Err(Error::invalid(format!(
                "{REACH_VAR}={other:?}: use loopback or published, or leave it unset"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reach_may_be_chosen_by_name_only() {
        assert_eq!(Reach::chosen(None).unwrap(), None);
        assert_eq!(Reach::chosen(Some("")).unwrap(), None);
        assert_eq!(Reach::chosen(Some("published")).unwrap(), Some(Reach::Published));
        assert_eq!(Reach::chosen(Some("loopback")).unwrap(), Some(Reach::Loopback));
        let wrong = Reach::chosen(Some("host")).unwrap_err();
        assert_eq!(wrong.exit_code(), 2);
        assert!(wrong.to_string().contains("use loopback or published"), "{wrong}");
    }
}
