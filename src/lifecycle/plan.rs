//! A new cluster's nodes, decided before anything is made: names, order,
//! addresses, containers, settings, which node publishes what. Pure, so
//! that it is tested without an engine; `create` carries it out.

use crate::naming::{NodeName, Role};
use crate::node_container::{ClusterFacts, NodePlan};
use crate::node_image::Choice;

use super::CreateOptions;

/// The nodes of a new cluster in the order they are brought up: managers,
/// then workers. The first manager is the one that inits the swarm, and
/// the only one a fixed API port (--api-port) goes to.
pub(super) fn node_plans(options: &CreateOptions, facts: &ClusterFacts) -> Vec<NodePlan> {
    let first = NodeName::first_manager();
    node_names(options)
        .map(|node| {
            let api_port = options.api_port.filter(|_| node == first);
            NodePlan::new(facts, node, options.settings.for_node(node), api_port)
        })
        .collect()
}

fn node_names(options: &CreateOptions) -> impl Iterator<Item = NodeName> {
    (1..=options.managers)
        .map(|i| NodeName::new(Role::Manager, i))
        .chain((1..=options.workers).map(|i| NodeName::new(Role::Worker, i)))
}

/// The image choices of nodes whose cluster-file sections pick their own,
/// each once.
pub(super) fn own_choices(options: &CreateOptions) -> Vec<Choice> {
    let mut choices: Vec<Choice> = Vec::new();
    for choice in node_names(options).filter_map(|node| options.settings.for_node(node).choice()) {
        if !choices.contains(&choice) {
            choices.push(choice);
        }
    }
    choices
}

/// The smallest cluster whose nodes join the swarm together, once every
/// node's engine answers, rather than each as soon as its own does.
/// Joined early, a node gossips (the overlay networks' member list) while
/// the others still boot, and the two grow together: on two cores a
/// 1 + 100 create cost 2.30 CPU-seconds a node and took 117 s that way,
/// 0.70-0.75 and 36-38 s joined together (1 + 60: 1.59 and 49 s against
/// 0.77 and 24 s; 1 + 30: 1.05 and 16.4 s against 0.75 and 12.1 s). A
/// small cluster is quicker with each node joining at once: the first
/// manager's init and the joins then fill time the cores would idle.
const JOIN_TOGETHER_FROM: usize = 31;

/// Whether the nodes of a cluster of `nodes` join the swarm together.
pub(super) fn joins_together(nodes: usize) -> bool {
    nodes >= JOIN_TOGETHER_FROM
}

/// The smallest cluster whose create waits, once every node is Ready,
/// until the nodes' gossip has settled (see `settle`). Below it the gossip
/// after the join ends by itself within about 15 s (1 + 30: workers at
/// 5-7% of a core for 12 s), and a create that waited would take twice as
/// long; at 1 + 100 it keeps both cores busy for 20-50 s more.
const SETTLE_FROM: usize = 62;

/// Whether a create of `nodes` waits for their gossip to settle.
pub(super) fn waits_for_gossip(nodes: usize) -> bool {
    nodes >= SETTLE_FROM
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::addressing::Ipv4Net;
    use crate::config::ClusterFile;
    use crate::labels::Run;
    use crate::naming::ClusterName;
    use crate::node_image::{EngineVersion, Images};

    fn plans(options: &CreateOptions, direct_api: bool) -> Vec<NodePlan> {
        let subnet: Ipv4Net = "172.28.5.0/24".parse().unwrap();
        let mut images = Images::single("swarmlab/node:latest");
        images.set_engine("swarmlab/node:latest", EngineVersion::parse("28.5.2").ok());
        let facts = ClusterFacts {
            cluster: &options.name,
            images: &images,
            network_id: "net-id",
            subnet: &subnet,
            direct_api,
            insecure: options.insecure,
            rootless: false,
            run: &Run::new(),
            nodes: (options.managers + options.workers) as usize,
        };
        node_plans(options, &facts)
    }

    #[test]
    fn managers_first_then_workers_each_at_the_address_its_name_gives() {
        let mut options = CreateOptions::new(ClusterName::new("lab").unwrap());
        options.managers = 3;
        options.workers = 2;
        let plans = plans(&options, false);
        let names: Vec<String> = plans.iter().map(|p| p.node.hostname()).collect();
        assert_eq!(names, ["manager-1", "manager-2", "manager-3", "worker-1", "worker-2"]);
        let addresses: Vec<Ipv4Addr> = plans.iter().map(|p| p.address).collect();
        assert_eq!(addresses[0], Ipv4Addr::new(172, 28, 5, 2));
        assert_eq!(addresses[3], Ipv4Addr::new(172, 28, 5, 11));
        assert!(plans.iter().all(|p| p.gateway == Ipv4Addr::new(172, 28, 5, 1)));
        assert_eq!(plans[4].container(), "lab-worker-2");
        assert!(
            plans
                .iter()
                .all(|p| p.network == "net-id" && p.image == "swarmlab/node:latest")
        );
        let engine = plans[0].engine.as_ref().map(ToString::to_string);
        assert_eq!(
            engine.as_deref(),
            Some("28.5.2"),
            "the image's engine, for its settings"
        );
    }

    #[test]
    fn who_publishes_the_engine_api() {
        let mut options = CreateOptions::new(ClusterName::new("lab").unwrap());
        options.api_port = Some(23750);
        let direct = plans(&options, true);
        assert!(direct[0].publish_api, "managers always publish");
        assert!(
            direct[1..].iter().all(|p| !p.publish_api),
            "workers are reached directly"
        );
        assert_eq!(
            direct[0].api_port,
            Some(23750),
            "the fixed port goes to the first manager"
        );
        assert!(direct[1..].iter().all(|p| p.api_port.is_none()));
        let remote = plans(&options, false);
        assert!(
            remote.iter().all(|p| p.publish_api),
            "no direct route: everyone publishes"
        );
    }

    #[test]
    fn large_clusters_join_together_and_the_largest_wait_for_their_gossip() {
        assert!(!joins_together(4));
        assert!(!joins_together(30));
        assert!(joins_together(31));
        assert!(joins_together(101));
        assert!(!waits_for_gossip(61));
        assert!(waits_for_gossip(62));
    }

    #[test]
    fn each_node_gets_its_settings() {
        let file = ClusterFile::parse(
            "workers = 2\n[defaults]\nmemory = \"512MiB\"\n[role.worker]\ncpus = 1.5\n[nodes.worker-2]\nlabels = { disk = \"ssd\" }\n",
        )
        .unwrap();
        let mut options = CreateOptions::new(ClusterName::new("lab").unwrap());
        options.workers = 2;
        options.settings = file.settings();
        let plans = plans(&options, true);
        assert_eq!(plans[0].settings.memory, Some(512 << 20));
        assert_eq!(plans[0].settings.cpus, None, "worker settings are the workers'");
        assert_eq!(plans[1].settings.cpus, Some(1.5));
        assert!(plans[1].settings.labels.is_empty());
        assert_eq!(plans[2].settings.labels["disk"], "ssd");
    }
}
