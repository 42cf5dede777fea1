//! Swarm's disaster recovery, as its admin guide has it done by hand: when
//! too few managers are left to elect a leader, one survivor starts a new
//! swarm of itself (`swarm init --force-new-cluster`, which keeps the
//! services, networks and secrets), the other managers leave their old
//! swarm and join the new one as managers, and the workers follow.

use std::net::Ipv4Addr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::NodeSpecRoleEnum;
use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::{Cluster, NodeContainer};
use crate::convergence::Observer;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message};
use crate::naming::{ClusterName, Role};
use crate::progress::Progress;
use crate::swarm;

use super::network::heal_all;
use super::{delete_entry, update_spec};

/// What a recovery did.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    /// The manager the new swarm was made of.
    pub survivor: String,
    /// The other managers, back in it as managers.
    pub rejoined: Vec<String>,
    pub seconds: f64,
}

/// Recovers a cluster whose swarm lost its quorum; a swarm with a leader is
/// refused (nothing to recover, and forcing a new cluster would cost the
/// other managers their membership).
pub async fn recover(
    engine: &HostEngine,
    name: &ClusterName,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<Recovered> {
    let started = Instant::now();
    let cluster = Cluster::open(engine, name).await?;
    match cluster.any_manager().await {
        Ok(_) => {
            return Err(Error::invalid(format!(
                "the swarm of cluster {name} has a leader: nothing to recover (`swarmlab inspect` shows its managers)"
            )));
        }
        Err(Error::QuorumLost { .. }) => {}
        Err(error) => return Err(error),
    }
    // Partitions first: the survivor must reach the nodes it takes back.
    heal_all(&cluster).await;
    let managers: Vec<&NodeContainer> = cluster.nodes.iter().filter(|n| n.node.role == Role::Manager).collect();
    let (survivor, docker) = survivor(&cluster, &managers).await?;
    let survivor_host = survivor.node.hostname();
    let address = survivor
        .address
        .ok_or_else(|| Error::Other(format!("{survivor_host} has no address")))?;

    progress.step(
        &survivor_host,
        "making a new swarm of it (--force-new-cluster), services kept",
    );
    swarm::force_new_cluster(&docker, address).await?;
    wait_leader(&docker, started + timeout).await?;

    // The old managers' entries are unreachable members of the new raft:
    // demoted and removed, they come back as new members. Their manager
    // status may be gone already (force-new-cluster drops them from raft)
    // while their role stays manager: both tell.
    let nodes = docker.list_nodes(None).await.context("cannot list the swarm's nodes")?;
    let was_manager = |n: &&bollard::models::Node| n.manager_status.is_some() || swarm::role(n) == Some(Role::Manager);
    for entry in nodes.iter().filter(was_manager) {
        if swarm::hostname(entry) == Some(survivor_host.as_str()) {
            continue;
        }
        // One already out of raft cannot be demoted, only removed.
        match update_spec(&docker, entry, |spec| spec.role = Some(NodeSpecRoleEnum::WORKER)).await {
            Err(error) if error.to_string().contains("raft memberlist") => {}
            other => other?,
        }
        delete_entry(&docker, entry).await?;
    }
    let token = swarm::join_tokens(&docker).await?.manager;
    let mut rejoined = Vec::new();
    for manager in managers.iter().filter(|m| m.node.hostname() != survivor_host) {
        let host = manager.node.hostname();
        progress.step(&host, "joining the new swarm as a manager");
        rejoin(&cluster, manager, address, &token, started + timeout).await?;
        rejoined.push(host);
    }
    progress.note("waiting until every node is Ready and every service whole");
    Observer::new(engine, name).converged(timeout).await?;
    progress.done(&survivor_host, "the swarm has a leader again");
    Ok(Recovered {
        survivor: survivor_host,
        rejoined,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The first running manager whose engine answers.
async fn survivor<'a>(cluster: &'a Cluster, managers: &[&'a NodeContainer]) -> Result<(&'a NodeContainer, Docker)> {
    for manager in managers.iter().filter(|m| m.running) {
        let Ok(docker) = cluster.node_engine(manager) else {
            continue;
        };
        if let Ok(Ok(docker)) = tokio::time::timeout(Duration::from_secs(3), docker.negotiate_version()).await {
            return Ok((manager, docker));
        }
    }
    Err(Error::NoManager {
        cluster: cluster.name.to_string(),
        state: "runs and answers".into(),
        hint: format!(
            "start one (`swarmlab node start manager-1 --name {}`), then recover",
            cluster.name
        ),
    })
}

async fn wait_leader(docker: &Docker, deadline: Instant) -> Result<()> {
    loop {
        match docker.list_nodes(None).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %engine_message(&e), "the new swarm has no leader yet");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e).context("the new swarm did not get a leader"),
        }
    }
}

/// Brings a manager of the old swarm into the new one: its container
/// started if it is not running, its old membership left, joined anew.
async fn rejoin(
    cluster: &Cluster,
    manager: &NodeContainer,
    to: Ipv4Addr,
    token: &str,
    deadline: Instant,
) -> Result<()> {
    if !manager.running {
        cluster
            .engine
            .docker
            .start_container(&manager.name, None)
            .await
            .with_context(|| format!("cannot start {}", manager.name))?;
    }
    let host = manager.node.hostname();
    // A started container has a new API port, and a stopped one shows no
    // address: ask the host engine again.
    let (docker, address) = loop {
        let now = Cluster::open(&cluster.engine, &cluster.name).await?;
        let answer = match now.container_of(&host).map(|c| (now.node_engine(c), c.address)) {
            Some((Ok(docker), Some(address))) => docker.negotiate_version().await.ok().map(|d| (d, address)),
            _ => None,
        };
        if let Some(answer) = answer {
            break answer;
        }
        if Instant::now() >= deadline {
            return Err(Error::NodeFailed {
                node: host,
                reason: "its engine did not answer after it was started".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let leave = bollard::query_parameters::LeaveSwarmOptionsBuilder::new()
        .force(true)
        .build();
    if let Err(e) = docker.leave_swarm(Some(leave)).await {
        tracing::debug!(error = %engine_message(&e), %host, "leaving the old swarm");
    }
    swarm::join(&docker, address, to, token, deadline)
        .await
        .map_err(|e| Error::NodeFailed {
            node: host,
            reason: e.to_string(),
        })
}
