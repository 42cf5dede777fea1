//! The node engine settings that a hundred nodes on two cores needed,
//! each measured (README, "How fast"): threads, CPU weight, heap target,
//! gossip packet size, ip6tables. Swarm's heartbeats and failure detection
//! stay as the engine has them.

use crate::naming::Role;
use crate::node_choice::EngineVersion;

/// How many threads at once run the Go code of a node's dockerd and
/// containerd (not its containers). Every node boots at the same time, so
/// the machine is oversubscribed: with one per core each, the runtimes spin
/// and contend for locks and GC work instead of booting. Measured on 2
/// cores, medians of interleaved rounds: 1+10 create 4.9 s instead of 6.1,
/// 1+3 2.0 s instead of 2.15. On the first manager it also keeps swarm init
/// from hitting swarmkit's 500 ms retry (its control-socket health check
/// racing raft start-up): 0 of 10 creates did instead of 5 of 10. A node's
/// engine idles most of the time, and one core is plenty for a lab.
pub(super) const GOMAXPROCS: u32 = 1;

/// A manager's CPU weight against a worker's (1024, the engine's default).
/// At a hundred nodes on two cores every dockerd wants CPU at once, and
/// the one that serves the joins got 11 s of it in 490 s of wanting it:
/// certificate requests timed out and joins failed. The control plane
/// goes first; idle, it costs nothing.
pub(super) const MANAGER_CPU_SHARES: i64 = 8 * 1024;

/// The Go heap target of a node's dockerd and containerd, and of every
/// helper process dockerd re-executes itself as (about eight per node when
/// it joins the ingress network). Measured idle memory, largest node:
/// 42 MiB for a manager at 25 (54 at Go's default 100), 37 MiB for a worker
/// at 50 (34 at 25, 45 at 100). Workers at 50 rather than 25 save about
/// 0.8 CPU-seconds per 1+10 create, most of it in those helpers.
///
/// Workers made for a cluster of over [`GOSSIP_STORM_NODES`] nodes run at
/// 100 (those already running keep theirs until they are made again): at
/// 1 + 100 on two cores, the gossip of the overlay networks' member list
/// (every node probes and gossips with the others; about half of a
/// worker's CPU is Go's garbage collector) needs the CPU that a low heap
/// target gives the collector. Engine 28.5, one create each, idle 15-45 s
/// after the create and memory per node: 1.91% and 33 MiB at 50, 1.71% and
/// 38 at 100, 1.21% and 47 at 200; 0.4-0.5% a minute later at every one.
///
/// Engines before 28 run at 200: engine 20.10's member list churns (probes
/// time out, nodes are marked failed and rejoin, each rejoin a full
/// resync) and at 50 or 100 it kept both cores busy for 5 minutes and
/// more, at 200 for about two (57 MiB per node instead of 43). An engine
/// that does not say its version (not swarmlab's image) counts as current.
pub(super) fn gogc(role: Role, cluster_nodes: usize, engine: Option<&EngineVersion>) -> u32 {
    match role {
        Role::Manager => 25,
        Role::Worker if cluster_nodes <= GOSSIP_STORM_NODES => 50,
        Role::Worker if engine.is_some_and(|e| e.major() < 28) => 200,
        Role::Worker => 100,
    }
}

/// The largest cluster measured to settle with workers at GOGC 50: a 1+60
/// cluster's idle CPU fell from 73% of a core to 40% within a minute.
const GOSSIP_STORM_NODES: usize = 61;

/// The size of the overlay networks' gossip packets: the nodes share one
/// bridge on one host, where a datagram larger than the bridge's MTU is
/// only cut into fragments, never lost for it. Each gossip round (5 a
/// second) sends one packet of queued messages to each of 3 peers, so at
/// 1400 bytes (dockerd's default) the messages of 100 nodes joining
/// together queue up for a minute. Measured at 1 + 100, engine 28.5, two
/// cores: the nodes settled 20-25 s after the create instead of about 50
/// (idle 15-45 s after the create 1.14-1.29% of a core per node instead of
/// 1.71). Swarm's heartbeats and failure detection are untouched; engine
/// 20.10 did not gain (its member list still churned for 2 minutes).
const CONTROL_PLANE_MTU: u32 = 9000;

/// The first engine whose dockerd sets up ip6tables by default (before,
/// an experimental opt-in). Nodes of such an engine run without: it is an ip6tables
/// process per rule, with the iptables ones, at every boot and join, and
/// the nodes' networks are IPv4. Measured at 1 + 100, engine 28.5, two
/// cores, interleaved: every node's engine answered after 42.6-45.0 s
/// instead of 47.2-51.0 (create 78-82 s instead of 82-88, 145-157
/// CPU-seconds instead of 152-168); while the nodes boot, ip6tables had
/// been 7% of the machine's CPU.
const IP6TABLES_BY_DEFAULT_FROM: u32 = 27;

/// The dockerd arguments these settings add.
pub(super) fn dockerd_args(engine: Option<&EngineVersion>) -> Vec<String> {
    let mut args = vec![format!("--network-control-plane-mtu={CONTROL_PLANE_MTU}")];
    // Only where known: an engine before 20.10 has no such flag.
    if engine.is_some_and(|e| e.major() >= IP6TABLES_BY_DEFAULT_FROM) {
        args.push("--ip6tables=false".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_of_a_large_cluster_trade_memory_for_a_gossip_that_keeps_up() {
        let (old, current) = (
            EngineVersion::parse("20.10.24").unwrap(),
            EngineVersion::parse("28.5").unwrap(),
        );
        assert_eq!(gogc(Role::Worker, 4, Some(&old)), 50);
        assert_eq!(gogc(Role::Worker, GOSSIP_STORM_NODES, None), 50);
        assert_eq!(gogc(Role::Worker, GOSSIP_STORM_NODES + 1, Some(&current)), 100);
        assert_eq!(gogc(Role::Worker, GOSSIP_STORM_NODES + 1, None), 100);
        assert_eq!(gogc(Role::Worker, GOSSIP_STORM_NODES + 1, Some(&old)), 200);
        assert_eq!(gogc(Role::Manager, 101, Some(&current)), 25);
    }

    #[test]
    fn current_engines_boot_without_ip6tables() {
        let off = "--ip6tables=false".to_string();
        assert!(dockerd_args(EngineVersion::parse("28.5").ok().as_ref()).contains(&off));
        for engine in [EngineVersion::parse("26.1").ok(), None] {
            assert!(!dockerd_args(engine.as_ref()).contains(&off));
        }
    }
}
