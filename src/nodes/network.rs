//! Network faults of a node while its container keeps running: cut off
//! from the other nodes (a partition), slowed down (netem), and healed.
//! The rules live in the node's own network namespace, in a chain of ours,
//! so healing removes exactly them and nothing of the node engine's.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::convergence::Observer;
use crate::error::{Error, Result};
use crate::node_container;
use crate::progress::Progress;

use super::{Timings, wait_marked_down};

const CHAIN: &str = "SWARMLAB-PARTITION";
/// Where the chain is jumped to: traffic to and from the node, and what
/// its task containers send through it.
const HOOKS: [&str; 3] = ["INPUT", "OUTPUT", "FORWARD"];

/// The shell script that cuts a node off from `peers` (again from scratch
/// when it was cut off already).
pub(crate) fn partition_script(peers: &[Ipv4Addr]) -> String {
    let mut lines = vec![format!("iptables -N {CHAIN} 2>/dev/null || iptables -F {CHAIN}")];
    for hook in HOOKS {
        lines.push(format!(
            "iptables -C {hook} -j {CHAIN} 2>/dev/null || iptables -I {hook} 1 -j {CHAIN}"
        ));
    }
    for peer in peers {
        lines.push(format!("iptables -A {CHAIN} -s {peer} -j DROP"));
        lines.push(format!("iptables -A {CHAIN} -d {peer} -j DROP"));
    }
    lines.join(" && ")
}

/// The shell script that undoes [`partition_script`] and any slowing down;
/// it succeeds on a node that has neither.
pub(crate) fn heal_script(interface: &str) -> String {
    let mut lines = Vec::new();
    for hook in HOOKS {
        lines.push(format!("while iptables -D {hook} -j {CHAIN} 2>/dev/null; do :; done"));
    }
    lines.push(format!("iptables -F {CHAIN} 2>/dev/null"));
    lines.push(format!("iptables -X {CHAIN} 2>/dev/null"));
    lines.push(format!("tc qdisc del dev {interface} root netem 2>/dev/null"));
    lines.push("true".into());
    lines.join("; ")
}

/// The node's interface on the cluster network: its only one besides those
/// its own engine makes.
const INTERFACE: &str = "eth0";

/// Whom a partition cuts `hostname` off from: the nodes named in `from`, or
/// every other node; refused for unknown names and for the node itself.
fn peers(cluster: &Cluster, hostname: &str, from: &[String]) -> Result<Vec<Ipv4Addr>> {
    for name in from {
        if name == hostname {
            return Err(Error::invalid(format!("{hostname} cannot be cut off from itself")));
        }
        cluster.node(name)?;
    }
    Ok(cluster
        .nodes
        .iter()
        .filter(|n| n.node.hostname() != hostname)
        .filter(|n| from.is_empty() || from.contains(&n.node.hostname()))
        .filter_map(|n| n.address)
        .collect())
}

fn running<'a>(cluster: &'a Cluster, hostname: &str) -> Result<&'a crate::cluster::NodeContainer> {
    let container = cluster.node(hostname)?;
    if !container.running {
        return Err(Error::invalid(format!(
            "{hostname} is not running ({}): start it first (swarmlab node start {hostname})",
            container.state
        )));
    }
    Ok(container)
}

/// Cuts `hostname` off from the other nodes (or those in `from`) while its
/// container runs on. Cut off from every other node, it is waited for to be
/// marked down and for its tasks to run elsewhere.
pub async fn partition(
    cluster: &Cluster,
    hostname: &str,
    from: &[String],
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<Timings> {
    let container = running(cluster, hostname)?;
    let peers = peers(cluster, hostname, from)?;
    let started = Instant::now();
    node_container::exec(
        &cluster.engine,
        &container.name,
        &["sh", "-c", &partition_script(&peers)],
    )
    .await?;
    let mut timings = Timings::default();
    timings.mark("cut off", started);
    if !from.is_empty() {
        progress.done(hostname, &format!("cut off from {}", from.join(", ")));
        return Ok(timings);
    }
    progress.step(hostname, "cut off; waiting for the swarm to notice");
    let mut observer = Observer::new(&cluster.engine, &cluster.name);
    wait_marked_down(&mut observer, hostname, timeout, &mut timings, started, progress).await?;
    // Its container runs, so "every node Ready" cannot hold: the services
    // being whole on the other nodes is what counts.
    observer
        .until(
            timeout,
            "every service to run its replicas on the other nodes",
            |state| state.services.iter().all(|s| s.running >= s.desired),
        )
        .await?;
    timings.mark("everything running again", started);
    progress.done(hostname, "partitioned; the swarm recovered without it");
    Ok(timings)
}

/// Undoes a partition and any slowing down of `hostname`, and waits until
/// it is Ready and the cluster whole.
pub async fn heal(cluster: &Cluster, hostname: &str, timeout: Duration, progress: &dyn Progress) -> Result<Timings> {
    let container = running(cluster, hostname)?;
    let started = Instant::now();
    node_container::exec(&cluster.engine, &container.name, &["sh", "-c", &heal_script(INTERFACE)]).await?;
    let mut timings = Timings::default();
    timings.mark("reconnected", started);
    progress.step(hostname, "reconnected; waiting until it is Ready");
    let mut observer = Observer::new(&cluster.engine, &cluster.name);
    observer
        .until(timeout, &format!("{hostname} to be Ready"), |state| {
            state.ready.contains(hostname)
        })
        .await?;
    timings.mark("Ready", started);
    observer.converged(timeout).await?;
    timings.mark("cluster whole", started);
    progress.done(hostname, "healed");
    Ok(timings)
}

/// Undoes partitions and slowing down on every running node, at once;
/// where a node cannot be reached that way it is left as it is.
pub(crate) async fn heal_all(cluster: &Cluster) {
    let script = heal_script(INTERFACE);
    let heals = cluster.nodes.iter().filter(|n| n.running).map(|node| {
        let script = script.clone();
        async move {
            if let Err(error) = node_container::exec(&cluster.engine, &node.name, &["sh", "-c", &script]).await {
                tracing::debug!(node = %node.name, %error, "cannot heal");
            }
        }
    });
    futures_util::future::join_all(heals).await;
}

/// Delays (and drops a share of) what `hostname` sends, with netem; where
/// the kernel has no netem, says so at once.
pub async fn slow(cluster: &Cluster, hostname: &str, delay: Duration, loss_percent: f64) -> Result<()> {
    let container = running(cluster, hostname)?;
    let mut rule = format!(
        "tc qdisc replace dev {INTERFACE} root netem delay {}ms",
        delay.as_millis()
    );
    if loss_percent > 0.0 {
        rule.push_str(&format!(" loss {loss_percent}%"));
    }
    match node_container::exec(&cluster.engine, &container.name, &["sh", "-c", &rule]).await {
        Ok(_) => Ok(()),
        Err(Error::Other(message)) if no_netem(&message) => Err(Error::Prerequisite(
            "this kernel has no netem (the sch_netem module), so a node cannot be slowed down here; `swarmlab node partition` works without it".into(),
        )),
        Err(error) => Err(error),
    }
}

/// Whether tc's complaint means the kernel lacks netem.
fn no_netem(message: &str) -> bool {
    ["qdisc kind is unknown", "Unknown qdisc"]
        .iter()
        .any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_rules_in_a_chain_of_ours_and_healing_removes_only_them() {
        let script = partition_script(&["10.1.0.2".parse().unwrap(), "10.1.0.4".parse().unwrap()]);
        assert!(script.starts_with("iptables -N SWARMLAB-PARTITION 2>/dev/null || iptables -F SWARMLAB-PARTITION"));
        for hook in HOOKS {
            assert!(
                script.contains(&format!("iptables -I {hook} 1 -j SWARMLAB-PARTITION")),
                "{script}"
            );
        }
        assert!(script.contains(
            "-A SWARMLAB-PARTITION -s 10.1.0.2 -j DROP && iptables -A SWARMLAB-PARTITION -d 10.1.0.2 -j DROP"
        ));
        assert!(script.contains("-d 10.1.0.4 -j DROP"));
        let heal = heal_script("eth0");
        assert!(heal.contains("iptables -X SWARMLAB-PARTITION") && heal.contains("tc qdisc del dev eth0 root netem"));
        assert!(heal.ends_with("; true"), "healing a healthy node succeeds");
        assert!(!heal.contains("DOCKER"), "the engine's own chains are left alone");
    }

    #[test]
    fn a_kernel_without_netem_is_recognised() {
        assert!(no_netem(
            "sh in n-worker-1 failed (exit 2): Error: Specified qdisc kind is unknown."
        ));
        assert!(!no_netem(
            "sh in n-worker-1 failed (exit 1): RTNETLINK answers: Operation not permitted"
        ));
    }
}
