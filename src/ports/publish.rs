//! Where the forwarder sits on the cluster network (`Reach::Published`):
//! a port container per published port, made and removed as ports come and
//! go, each at a fixed address of its own and passing connections on to
//! the forwarder's.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::addressing;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::forwarder_container::{self as container, PortState, PortStatus};
use crate::naming::ClusterName;

use super::log::{log, tell};

pub(super) struct Publisher {
    image: String,
    /// The forwarder's own address, where port containers send connections.
    to: Ipv4Addr,
    /// Addresses port containers may take.
    pool: Vec<Ipv4Addr>,
}

impl Publisher {
    pub(super) async fn new(engine: &HostEngine, name: &ClusterName) -> Result<Self> {
        let network = engine
            .docker
            .inspect_network(&name.network(), None)
            .await
            .with_context(|| format!("cannot inspect network {}", name.network()))?;
        let subnet = addressing::subnet_of(&network)?;
        Ok(Publisher {
            image: container::own_image(engine, name).await?,
            to: addressing::forwarder_address(&subnet),
            pool: addressing::port_addresses(&subnet).collect(),
        })
    }

    /// Makes a port container for every port listened on, and removes
    /// those of ports that are gone; a port the engine cannot publish is
    /// said so.
    pub(super) async fn publish(
        &self,
        engine: &HostEngine,
        name: &ClusterName,
        ports: &mut [PortStatus],
        said: &mut HashMap<u16, String>,
    ) {
        let mut existing = match container::port_containers(engine, name).await {
            Ok(existing) => existing,
            Err(error) => {
                log(&format!("cannot list the port containers: {error}"));
                return;
            }
        };
        let gone: Vec<u16> = existing
            .iter()
            .map(|c| c.port)
            .filter(|p| !ports.iter().any(|s| s.published_port == *p))
            .collect();
        for port in gone {
            match container::remove_port(engine, name, port).await {
                Ok(()) => {
                    log(&format!("the engine no longer publishes 127.0.0.1:{port}"));
                    existing.retain(|c| c.port != port);
                }
                Err(error) => log(&error.to_string()),
            }
        }
        for status in ports.iter_mut().filter(|s| s.state != PortState::PortTaken) {
            let port = status.published_port;
            let made = existing.iter().find(|c| c.port == port);
            if made.is_some_and(|c| c.running) {
                continue;
            }
            let address = made.and_then(|c| c.address).or_else(|| {
                self.pool
                    .iter()
                    .copied()
                    .find(|a| !existing.iter().any(|c| c.address == Some(*a)))
            });
            let Some(address) = address else {
                let message = format!(
                    "127.0.0.1:{port} is not published: {} ports at most can be, through port containers",
                    self.pool.len()
                );
                tell(said, port, &message);
                status.message = message;
                continue;
            };
            match container::ensure_port(engine, name, &self.image, port, address, self.to).await {
                Ok(()) => {
                    log(&format!("the engine publishes 127.0.0.1:{port} for {}", status.service));
                    existing.push(container::PortContainer {
                        port,
                        running: true,
                        address: Some(address),
                    });
                }
                Err(error) => {
                    let message = error.to_string();
                    tell(said, port, &message);
                    if matches!(error, Error::PortUnavailable(_)) {
                        status.state = PortState::PortTaken;
                    }
                    status.message = message;
                }
            }
        }
    }
}
