//! Rolling engine upgrades, the way Swarm's docs have them done by hand:
//! one node at a time, drained, its container made anew from the new image
//! on its volume (the same swarm node: ID, address, raft membership), Ready
//! again, active again, its services whole again. Managers first, one at a
//! time with the leader last, then workers; never a step that would leave
//! the managers without quorum.

use std::time::Duration;

use bollard::Docker;
use bollard::models::{Node, NodeSpecAvailabilityEnum, TaskState};
use bollard::query_parameters::{ListTasksOptionsBuilder, StopContainerOptionsBuilder};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Budget, Cluster};
use crate::convergence::Observer;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::naming::ClusterName;
use crate::node_container;
use crate::node_image::{self, Choice};
use crate::progress::Progress;
use crate::swarm::{self, ManagerStatus};

use super::upgrade_order::{Member, order, quorum_refusal};
use super::{swarm_entry, update_spec};

/// How long an upgraded node may take to be Ready before its engine is
/// started anew, once; it takes 4 to 13 s under the test suite's load.
const NUDGE_AFTER: Duration = Duration::from_secs(45);

/// One node's upgrade, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Upgraded {
    pub node: String,
    pub from_image: String,
    pub to_image: String,
    /// What its engine said before and after.
    pub from_engine: String,
    pub to_engine: String,
    /// Its tasks gone elsewhere.
    pub drained: f64,
    /// Its new container's engine Ready in the swarm, as the same node.
    pub ready: f64,
    /// Active again and every service whole.
    pub total: f64,
}

/// Upgrades `targets` (every node when empty) to the node image `choice`
/// picks, one at a time in the safe order.
pub async fn upgrade(
    engine: &HostEngine,
    name: &ClusterName,
    targets: &[String],
    choice: &Choice,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<Vec<Upgraded>> {
    let cluster = Cluster::open(engine, name).await?;
    for target in targets {
        cluster.node(target)?;
    }
    let image = node_image::resolve_choice(engine, Some(choice), progress, &CancellationToken::new()).await?;
    let targets: Vec<String> = if targets.is_empty() {
        cluster.nodes.iter().map(|n| n.node.hostname()).collect()
    } else {
        targets.to_vec()
    };
    let mut done = Vec::new();
    for hostname in order(&targets, &members(&cluster).await?) {
        let cluster = Cluster::open(engine, name).await?;
        if cluster.node(&hostname)?.image == image {
            progress.done(&hostname, &format!("already runs {image}"));
            continue;
        }
        if let Some(refusal) = quorum_refusal(&hostname, &members(&cluster).await?) {
            return Err(Error::invalid(refusal));
        }
        done.push(one(&cluster, &hostname, &image, timeout, progress).await?);
    }
    Ok(done)
}

async fn members(cluster: &Cluster) -> Result<Vec<Member>> {
    let (_, manager) = cluster.any_manager().await?;
    let nodes = manager
        .list_nodes(None)
        .await
        .context("cannot list the swarm's nodes")?;
    Ok(cluster
        .nodes
        .iter()
        .map(|container| {
            let hostname = container.node.hostname();
            let entry = swarm::entry(&nodes, &hostname);
            Member {
                role: entry.and_then(swarm::role).unwrap_or(container.node.role),
                status: entry.map(swarm::manager_status).unwrap_or_default(),
                hostname,
            }
        })
        .collect())
}

/// A manager to ask about `hostname` while it is being upgraded: another
/// one where there is one, else (a single manager) itself. `patient` for
/// the question that starts a node's upgrade (managers slow to answer on a
/// loaded host are waited for), not for a look repeated in a loop.
async fn manager_for(cluster: &Cluster, hostname: &str, patient: bool) -> Result<Docker> {
    match manager_but(cluster, hostname, patient).await {
        Ok(manager) => Ok(manager),
        Err(_) => manager_but(cluster, "", patient).await,
    }
}

async fn manager_but(cluster: &Cluster, hostname: &str, patient: bool) -> Result<Docker> {
    let (_, manager) = if patient {
        cluster.any_manager_but(hostname).await?
    } else {
        cluster.manager_at_a_glance(hostname).await?
    };
    Ok(manager)
}

async fn one(
    cluster: &Cluster,
    hostname: &str,
    image: &str,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<Upgraded> {
    let started = Instant::now();
    let container = cluster.node(hostname)?.clone();
    let manager = manager_for(cluster, hostname, true).await?;
    let before = swarm_entry(&manager, hostname).await?;
    let from_engine = swarm::engine_version(&before);

    progress.step(hostname, "draining");
    set_availability(&manager, hostname, NodeSpecAvailabilityEnum::DRAIN, timeout).await?;
    wait_drained(&manager, &before, hostname, timeout).await?;
    let drained = started.elapsed();
    // The swarm keeps calling the old engine Ready for a few heartbeats
    // after it stops; only a registration newer than this is the new one.
    let last_seen = swarm::version_index(&swarm_entry(&manager, hostname).await?);

    progress.step(hostname, &format!("making its container anew from {image}"));
    stop(cluster, &container.name).await?;
    let launcher = crate::cluster::launcher_for(cluster, progress, Budget::timeout(started, timeout)).await?;
    let mut plan = cluster.plan(container.node, &launcher.run).await?;
    plan.image = image.to_string();
    plan.engine = crate::node_image::engine_of(&cluster.engine, image).await;
    node_container::recreate(&cluster.engine, &plan).await?;
    launcher.start(&plan).await?;

    progress.step(hostname, "waiting until it is Ready");
    // Now and then (twice in CI, under load) the swarm kept the new engine
    // Down for minutes although it had registered: its entry carried the
    // new engine's version. Once, its engine is then started anew, which
    // registers it again.
    let first_wait = NUDGE_AFTER.min(timeout);
    let (manager, after) = match wait_registered(cluster, hostname, last_seen, first_wait).await {
        Err(Error::Timeout { .. }) if timeout > first_wait => {
            progress.step(
                hostname,
                &format!("not Ready after {} s: starting its engine anew", first_wait.as_secs()),
            );
            stop(cluster, &container.name).await?;
            launcher.start(&plan).await?;
            wait_registered(cluster, hostname, last_seen, timeout - first_wait).await?
        }
        waited => waited?,
    };
    let ready = started.elapsed();
    if after.id != before.id {
        return Err(Error::NodeFailed {
            node: hostname.to_string(),
            reason: "it came back as a different swarm node".into(),
        });
    }
    if after.manager_status.is_some() {
        // Ready comes before raft reaches it again; until it does, the next
        // manager's turn would find quorum one short.
        progress.step(hostname, "waiting until the other managers reach it");
        wait_reachable(&manager, hostname, timeout).await?;
    }
    progress.step(hostname, "active again; waiting for every service to be whole");
    set_availability(&manager, hostname, NodeSpecAvailabilityEnum::ACTIVE, timeout).await?;
    Observer::new(&cluster.engine, &cluster.name).converged(timeout).await?;
    let to_engine = swarm::engine_version(&after);
    progress.done(hostname, &format!("upgraded: engine {from_engine} → {to_engine}"));
    Ok(Upgraded {
        node: hostname.to_string(),
        from_image: container.image,
        to_image: image.to_string(),
        from_engine,
        to_engine,
        drained: drained.as_secs_f64(),
        ready: ready.as_secs_f64(),
        total: started.elapsed().as_secs_f64(),
    })
}

/// Stops a node's container; one already stopped (304) is fine.
async fn stop(cluster: &Cluster, container: &str) -> Result<()> {
    let options = StopContainerOptionsBuilder::new().t(10).build();
    match cluster.engine.docker.stop_container(container, Some(options)).await {
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
        stopped => stopped.with_context(|| format!("cannot stop {container}")),
    }
}

/// Sets a node's availability, again while the swarm is busy with the
/// upgrade: its entry changes version as the node comes back ("update out
/// of sequence"), and leadership may be moving ("lost leader status").
async fn set_availability(
    manager: &Docker,
    hostname: &str,
    availability: NodeSpecAvailabilityEnum,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let entry = swarm_entry(manager, hostname).await?;
        match update_spec(manager, &entry, |spec| spec.availability = Some(availability)).await {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() < deadline => {
                tracing::debug!(%error, hostname, "setting availability again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Waits until node `hostname` is Ready by a registration newer than
/// `last_seen` (its node entry's version then), and returns a manager to ask
/// from now on with that entry. The cluster is opened anew at each look: a
/// single manager's new container has a new API port.
async fn wait_registered(
    cluster: &Cluster,
    hostname: &str,
    last_seen: u64,
    timeout: Duration,
) -> Result<(Docker, Node)> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        let look = async {
            let now = Cluster::open(&cluster.engine, &cluster.name).await?;
            let manager = manager_for(&now, hostname, false).await?;
            let entry = swarm_entry(&manager, hostname).await?;
            Ok::<_, Error>((manager, entry))
        };
        match look.await {
            Ok((manager, entry)) if swarm::is_ready(&entry) && swarm::version_index(&entry) > last_seen => {
                return Ok((manager, entry));
            }
            Ok(_) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            let still = last_error.map_or_else(|| "it has not registered anew".to_string(), |e| e.to_string());
            return Err(Error::Timeout {
                what: format!("{hostname} to be Ready (still: {still})"),
                after: timeout,
                hint: format!("`docker logs {}-{hostname}` shows its engine's start", cluster.name),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the managers report manager `hostname` reachable.
async fn wait_reachable(manager: &Docker, hostname: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = swarm::manager_status(&swarm_entry(manager, hostname).await?);
        if matches!(status, ManagerStatus::Leader | ManagerStatus::Reachable) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("the other managers to reach {hostname} (it is {})", status.as_str()),
                after: timeout,
                hint: "`swarmlab inspect` shows each manager's status".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until no task on `node` runs any more.
async fn wait_drained(manager: &Docker, node: &Node, hostname: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let id = node.id.clone().unwrap_or_default();
    let options = ListTasksOptionsBuilder::new()
        .filters(&std::collections::HashMap::from([("node", vec![id.as_str()])]))
        .build();
    loop {
        let tasks = manager
            .list_tasks(Some(options.clone()))
            .await
            .context("cannot list the node's tasks")?;
        let running = tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .count();
        if running == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("the tasks of {hostname} to stop after it was drained ({running} still run)"),
                after: timeout,
                hint: format!("`swarmlab node ls` shows the node; `docker node ps {hostname}` its tasks"),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
