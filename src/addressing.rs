//! Cluster subnets and node addresses.
//!
//! Each cluster gets a /24 of its own from a pool that stays clear of Swarm's
//! default address pool (10.0.0.0/8, used for overlay networks inside the
//! nodes) and of every network the host engine already has. A node's address
//! follows from its name alone, so a node recreated after its container was
//! removed gets the same address back: a manager whose address changes
//! breaks its swarm.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::naming::{NodeName, Role};

pub(crate) const DEFAULT_POOL: &str = "172.28.0.0/14";
pub(crate) const POOL_ENV: &str = "SWARMLAB_SUBNET_POOL";
const CLUSTER_PREFIX: u8 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv4Net {
    pub(crate) addr: Ipv4Addr,
    pub(crate) prefix: u8,
}

impl Ipv4Net {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }

    fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    pub(crate) fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The address `offset` places after the network address.
    pub(crate) fn host(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + offset)
    }

    pub(crate) fn gateway(&self) -> Ipv4Addr {
        self.host(1)
    }

    /// Every address a node can have: all but the network, gateway and
    /// broadcast addresses.
    pub(crate) fn node_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let count = self.last().saturating_sub(self.first());
        (2..count).map(|offset| self.host(offset))
    }

    /// The /24 subnets of this network, in order.
    pub(crate) fn cluster_subnets(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        let count = 1u32 << (CLUSTER_PREFIX.saturating_sub(self.prefix));
        (0..count).map(move |i| Ipv4Net {
            addr: Ipv4Addr::from(self.first() + (i << (32 - CLUSTER_PREFIX))),
            prefix: CLUSTER_PREFIX,
        })
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::invalid(format!("invalid IPv4 network {s:?}: write it as A.B.C.D/N"));
        let (addr, prefix) = s.split_once('/').ok_or_else(invalid)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if prefix > 32 {
            return Err(invalid());
        }
        Ok(Ipv4Net { addr, prefix })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.first()), self.prefix)
    }
}

/// The pool cluster subnets come from: `SWARMLAB_SUBNET_POOL` or the default.
pub(crate) fn subnet_pool() -> Result<Ipv4Net> {
    pool_from(&std::env::var(POOL_ENV).unwrap_or_else(|_| DEFAULT_POOL.to_string()))
}

/// Checks a pool as `SWARMLAB_SUBNET_POOL` would give it.
fn pool_from(text: &str) -> Result<Ipv4Net> {
    let pool: Ipv4Net = text
        .parse()
        .map_err(|_| Error::invalid(format!("{POOL_ENV}={text:?} is not an IPv4 network like 172.28.0.0/14")))?;
    if pool.prefix > CLUSTER_PREFIX {
        return Err(Error::invalid(format!(
            "{POOL_ENV}={text} is smaller than one /{CLUSTER_PREFIX} cluster network: use a prefix of /{CLUSTER_PREFIX} or less"
        )));
    }
    let swarm_default = Ipv4Net {
        addr: Ipv4Addr::new(10, 0, 0, 0),
        prefix: 8,
    };
    if pool.overlaps(&swarm_default) {
        return Err(Error::invalid(format!(
            "{POOL_ENV}={text} overlaps 10.0.0.0/8, which Swarm uses for overlay networks inside the nodes: choose a range in 172.16.0.0/12 or 192.168.0.0/16"
        )));
    }
    Ok(pool)
}

/// The subnets of `pool` that overlap none of `taken`, in order.
pub(crate) fn free_subnets(pool: &Ipv4Net, taken: &[Ipv4Net]) -> Vec<Ipv4Net> {
    pool.cluster_subnets()
        .filter(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
        .collect()
}

/// The port forwarder's fixed address where it sits on the cluster network:
/// the last one, above every node's (workers end at .210).
pub(crate) fn forwarder_address(subnet: &Ipv4Net) -> Ipv4Addr {
    subnet.host(254)
}

/// Fixed addresses for port containers, .211 to .253: engine-chosen ones
/// would take the lowest free address, a node's that is not made yet.
pub(crate) fn port_addresses(subnet: &Ipv4Net) -> impl Iterator<Item = Ipv4Addr> + '_ {
    (211..254).map(|offset| subnet.host(offset))
}

/// The subnet of a cluster network, as the engine reports it.
pub(crate) fn subnet_of(network: &bollard::models::NetworkInspect) -> Result<Ipv4Net> {
    network
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .find_map(|config| config.subnet.as_deref()?.parse().ok())
        .ok_or_else(|| {
            Error::Other(format!(
                "network {} has no IPv4 subnet",
                network.name.as_deref().unwrap_or_default()
            ))
        })
}

/// A node's fixed address: managers from .2, workers from .11.
pub(crate) fn node_address(subnet: &Ipv4Net, node: NodeName) -> Ipv4Addr {
    let offset = match node.role {
        Role::Manager => 1 + node.index,
        Role::Worker => 10 + node.index,
    };
    subnet.host(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn node_addresses_leave_out_network_gateway_and_broadcast() {
        let addresses: Vec<Ipv4Addr> = net("172.28.3.0/24").node_addresses().collect();
        assert_eq!(addresses.len(), 253);
        assert_eq!(addresses[0], Ipv4Addr::new(172, 28, 3, 2));
        assert_eq!(addresses[252], Ipv4Addr::new(172, 28, 3, 254));
    }

    #[test]
    fn overlap() {
        assert!(net("172.28.0.0/14").overlaps(&net("172.30.5.0/24")));
        assert!(!net("172.28.0.0/24").overlaps(&net("172.28.1.0/24")));
        assert!(net("172.16.0.0/12").overlaps(&net("172.28.0.0/24")));
    }

    #[test]
    fn free_subnets_skip_taken_ones() {
        let pool = net("192.168.200.0/22");
        let free = free_subnets(&pool, &[net("192.168.200.0/24"), net("192.168.202.7/32")]);
        let names: Vec<String> = free.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["192.168.201.0/24", "192.168.203.0/24"]);
    }

    #[test]
    fn node_addresses_are_fixed_by_name() {
        let subnet = net("172.28.3.0/24");
        assert_eq!(subnet.gateway(), Ipv4Addr::new(172, 28, 3, 1));
        let m1 = node_address(&subnet, NodeName::new(Role::Manager, 1));
        let m9 = node_address(&subnet, NodeName::new(Role::Manager, 9));
        let w1 = node_address(&subnet, NodeName::new(Role::Worker, 1));
        let w200 = node_address(&subnet, NodeName::new(Role::Worker, 200));
        assert_eq!(m1, Ipv4Addr::new(172, 28, 3, 2));
        assert_eq!(m9, Ipv4Addr::new(172, 28, 3, 10));
        assert_eq!(w1, Ipv4Addr::new(172, 28, 3, 11));
        assert_eq!(w200, Ipv4Addr::new(172, 28, 3, 210));
        let ports: Vec<Ipv4Addr> = port_addresses(&subnet).collect();
        assert_eq!(ports.first(), Some(&Ipv4Addr::new(172, 28, 3, 211)));
        assert_eq!(ports.last(), Some(&Ipv4Addr::new(172, 28, 3, 253)));
        assert_eq!(forwarder_address(&subnet), Ipv4Addr::new(172, 28, 3, 254));
    }

    #[test]
    fn pool_must_avoid_swarm_default() {
        assert!(net("10.1.0.0/16").overlaps(&net("10.0.0.0/8")));
    }

    #[test]
    fn pools_are_checked() {
        assert_eq!(pool_from(DEFAULT_POOL).unwrap(), net("172.28.0.0/14"));
        assert_eq!(pool_from("192.168.64.0/20").unwrap(), net("192.168.64.0/20"));
        assert!(
            pool_from("lots")
                .unwrap_err()
                .to_string()
                .contains("not an IPv4 network")
        );
        assert!(
            pool_from("172.28.0.0/25")
                .unwrap_err()
                .to_string()
                .contains("smaller than one /24")
        );
        assert!(
            pool_from("10.128.0.0/16")
                .unwrap_err()
                .to_string()
                .contains("overlaps 10.0.0.0/8")
        );
        assert_eq!(pool_from("172.28.0.0/14").unwrap().cluster_subnets().count(), 1024);
    }

    #[test]
    fn a_full_pool_has_no_free_subnet() {
        let pool = net("192.168.10.0/24");
        assert!(free_subnets(&pool, &[net("192.168.0.0/16")]).is_empty());
        assert_eq!(free_subnets(&pool, &[]).len(), 1);
    }
}
