//! Node-level operations on a running cluster: add, remove, drain,
//! activate, promote, demote; and in `failures`, crash, start and
//! recreate (restart).

mod failures;
mod network;
mod recover;
mod upgrade;
mod upgrade_order;

pub use failures::{crash, restart, start};
pub use network::{heal, partition, slow};
pub use recover::{Recovered, recover};
pub use upgrade::{Upgraded, upgrade};

use std::time::Duration;

use bollard::Docker;
use bollard::models::{Node, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum};
use bollard::query_parameters::{DeleteNodeOptionsBuilder, LeaveSwarmOptionsBuilder, UpdateNodeOptionsBuilder};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Budget, Cluster, NodeContainer};
use crate::convergence::Observer;
use crate::error::{Context, Error, Result, is_not_found};
use crate::images;
use crate::naming::{NodeName, Role};
use crate::node_image::Choice;
use crate::progress::Progress;
use crate::swarm;

/// How long node operations wait for the swarm to follow.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Timings of an operation, in the order they happened.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings(pub Vec<(String, Duration)>);

impl Timings {
    fn mark(&mut self, what: &str, started: Instant) {
        self.0.push((what.to_string(), started.elapsed()));
    }
}

/// Waits until the swarm marks `hostname` down (a crash or a partition it
/// has to notice by missed heartbeats), and records and says so.
async fn wait_marked_down(
    observer: &mut Observer,
    hostname: &str,
    timeout: Duration,
    timings: &mut Timings,
    started: Instant,
    progress: &dyn Progress,
) -> Result<()> {
    observer
        .until(timeout, &format!("the swarm to mark {hostname} down"), |state| {
            state.down.contains(hostname)
        })
        .await?;
    timings.mark("marked down", started);
    progress.step(hostname, "down; waiting for its tasks to run elsewhere");
    Ok(())
}

/// The swarm's entries for a hostname, the one that counts first.
async fn swarm_entries(manager: &Docker, hostname: &str) -> Result<Vec<Node>> {
    let nodes = manager
        .list_nodes(None)
        .await
        .context("cannot list the swarm's nodes")?;
    Ok(swarm::entries(&nodes, hostname).into_iter().cloned().collect())
}

async fn swarm_entry(manager: &Docker, hostname: &str) -> Result<Node> {
    swarm_entries(manager, hostname)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other(format!("the swarm has no node {hostname}")))
}

async fn update_spec(manager: &Docker, node: &Node, change: impl FnOnce(&mut NodeSpec)) -> Result<()> {
    let id = node.id.clone().unwrap_or_default();
    let mut spec = node.spec.clone().unwrap_or_default();
    change(&mut spec);
    let version = crate::swarm::version_index(node) as i64;
    manager
        .update_node(&id, spec, UpdateNodeOptionsBuilder::new().version(version).build())
        .await
        .context("cannot update the node")
}

pub async fn set_availability(cluster: &Cluster, hostname: &str, availability: NodeSpecAvailabilityEnum) -> Result<()> {
    cluster.node(hostname)?;
    let (_, manager) = cluster.any_manager().await?;
    let node = swarm_entry(&manager, hostname).await?;
    update_spec(&manager, &node, |spec| spec.availability = Some(availability)).await
}

pub async fn set_role(cluster: &Cluster, hostname: &str, role: Role) -> Result<()> {
    cluster.node(hostname)?;
    let (_, manager) = cluster.any_manager().await?;
    let node = swarm_entry(&manager, hostname).await?;
    if role == Role::Worker && is_last_manager(&manager, &node).await? {
        return Err(Error::invalid(format!(
            "{hostname} is the only manager: promote another node first"
        )));
    }
    let wanted = match role {
        Role::Manager => NodeSpecRoleEnum::MANAGER,
        Role::Worker => NodeSpecRoleEnum::WORKER,
    };
    update_spec(&manager, &node, |spec| spec.role = Some(wanted)).await?;
    // The change is done when raft has taken the node in (or let it go):
    // until then, changing it again fails.
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    loop {
        let now = swarm_entry(&manager, hostname).await?;
        let reachable =
            now.manager_status.as_ref().and_then(|m| m.reachability) == Some(bollard::models::Reachability::REACHABLE);
        let done = match role {
            Role::Manager => reachable,
            Role::Worker => now.manager_status.is_none(),
        };
        if done {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("{hostname} to become a {role}"),
                after: DEFAULT_TIMEOUT,
                hint: "`docker node ls` shows the managers' state".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn is_last_manager(manager: &Docker, node: &Node) -> Result<bool> {
    if node.manager_status.is_none() {
        return Ok(false);
    }
    let managers = manager
        .list_nodes(None)
        .await
        .context("cannot list the swarm's nodes")?
        .into_iter()
        .filter(|n| n.manager_status.is_some())
        .count();
    Ok(managers <= 1)
}

/// Adds `count` nodes of `role`, each joined, Ready, and given the images
/// the other nodes hold. Their node image is `choice`'s, else the one the
/// role's nodes run (clusters may mix engines).
pub async fn add(
    cluster: &Cluster,
    role: Role,
    count: u32,
    choice: Option<&Choice>,
    progress: &dyn Progress,
) -> Result<(Vec<String>, Duration)> {
    let started = Instant::now();
    let highest = cluster
        .nodes
        .iter()
        .filter(|n| n.node.role == role)
        .map(|n| n.node.index)
        .max()
        .unwrap_or(0);
    let nodes: Vec<NodeName> = (1..=count).map(|i| NodeName::new(role, highest + i)).collect();
    if let Some(too_far) = nodes.iter().find(|n| n.index > limit(role)) {
        return Err(Error::invalid(format!(
            "{too_far} would exceed the {} {role}s a cluster can have",
            limit(role)
        )));
    }
    crate::host_room::ensure(&cluster.engine, count, cluster.nodes.len() as u32 + count, progress).await?;
    let image = match choice {
        Some(choice) => {
            let image =
                crate::node_image::resolve_choice(&cluster.engine, Some(choice), progress, &CancellationToken::new())
                    .await?;
            let engine = crate::node_image::engine_of(&cluster.engine, &image).await;
            Some((image, engine))
        }
        None => None,
    };
    let (manager_node, manager) = cluster.any_manager().await?;
    let manager_address = manager_node
        .address
        .ok_or_else(|| Error::Other("the manager has no address".into()))?;
    let tokens = swarm::join_tokens(&manager).await?;
    let budget = Budget::new(started, DEFAULT_TIMEOUT, "add fewer nodes at once");
    let launcher = crate::cluster::launcher_for(cluster, progress, budget).await?;
    let joins = nodes.iter().map(|&node| {
        let (launcher, tokens, image) = (&launcher, &tokens, &image);
        async move {
            let mut plan = cluster.plan(node, &launcher.run).await?;
            // The plan counts this node alone; the others come with it.
            plan.cluster_nodes = cluster.nodes.len() + count as usize;
            if let Some((image, engine)) = image {
                plan.image = image.clone();
                plan.engine = engine.clone();
            }
            launcher.launch(&plan).await?;
            let docker = launcher.wait_engine(&plan).await?;
            launcher.progress.step(&node.hostname(), "joining the swarm");
            swarm::join(
                &docker,
                plan.address,
                manager_address,
                tokens.for_role(role),
                launcher.deadline(),
            )
            .await?;
            Ok(plan)
        }
    });
    let plans = match launcher.all(joins).await {
        Ok(plans) => plans,
        Err(error) => {
            // Leave nothing half-made behind, and only what this add made.
            let _ = launcher.roll_back(&cluster.name).await;
            return Err(error);
        }
    };
    let added: Vec<String> = plans.iter().map(|plan| plan.node.hostname()).collect();
    let hostnames = added.iter().cloned().collect();
    swarm::wait_ready(&manager, &hostnames, started + DEFAULT_TIMEOUT, DEFAULT_TIMEOUT).await?;
    for plan in &plans {
        if !plan.settings.labels.is_empty() {
            swarm::label_node(&manager, &plan.node.hostname(), &plan.settings.labels).await?;
        }
    }
    give_images(cluster, &added, progress).await?;
    for host in &added {
        progress.done(host, "ready");
    }
    Ok((added, started.elapsed()))
}

fn limit(role: Role) -> u32 {
    match role {
        Role::Manager => crate::naming::MAX_MANAGERS,
        Role::Worker => crate::naming::MAX_WORKERS,
    }
}

/// Copies the images the other nodes hold into freshly made nodes.
async fn give_images(cluster: &Cluster, hostnames: &[String], progress: &dyn Progress) -> Result<()> {
    let fresh = Cluster::open(&cluster.engine, &cluster.name).await?;
    let peers: Vec<&NodeContainer> = fresh
        .nodes
        .iter()
        .filter(|n| n.running && !hostnames.contains(&n.node.hostname()))
        .collect();
    for host in hostnames {
        let node = fresh.node(host)?;
        progress.step(host, "copying the cluster's images");
        if let Some(load) = images::sync_from_peers(&fresh, &peers, node, progress).await?
            && load.outcome == images::LoadOutcome::Failed
        {
            return Err(Error::NodeFailed {
                node: host.clone(),
                reason: format!("copying images failed: {}", load.detail),
            });
        }
    }
    Ok(())
}

/// Removes a node: demoted and drained first unless `force`, then it leaves
/// the swarm, its entry is removed, its container and volume go.
pub async fn remove(cluster: &Cluster, hostname: &str, force: bool, progress: &dyn Progress) -> Result<Duration> {
    let started = Instant::now();
    let container = cluster.node(hostname)?;
    // Another manager than the one going away does the bookkeeping.
    let (_, manager) = cluster.any_manager_but(hostname).await?;
    let entries = swarm_entries(&manager, hostname).await?;
    if let Some(entry) = entries.first()
        && is_last_manager(&manager, entry).await?
    {
        return Err(Error::invalid(format!(
            "{hostname} is the only manager: it cannot be removed while the cluster lives (delete the cluster instead)"
        )));
    }
    if !force && let Some(entry) = entries.first().filter(|e| swarm::is_ready(e)) {
        if entry.manager_status.is_some() {
            progress.step(hostname, "demoting");
            update_spec(&manager, entry, |spec| spec.role = Some(NodeSpecRoleEnum::WORKER)).await?;
        }
        progress.step(hostname, "draining its tasks");
        let entry = swarm_entry(&manager, hostname).await?;
        update_spec(&manager, &entry, |spec| {
            spec.availability = Some(NodeSpecAvailabilityEnum::DRAIN)
        })
        .await?;
        let mut observer = Observer::new(&cluster.engine, &cluster.name);
        observer
            .until(DEFAULT_TIMEOUT, &format!("{hostname} to drain"), |state| {
                state.services.iter().all(|s| !s.per_node.contains_key(hostname))
            })
            .await?;
        progress.step(hostname, "leaving the swarm");
        if let Ok(docker) = cluster.node_engine(container) {
            let _ = docker
                .leave_swarm(Some(LeaveSwarmOptionsBuilder::new().force(false).build()))
                .await;
        }
    }
    progress.step(hostname, "removing its container");
    cluster.engine.remove_container(&container.name).await?;
    remove_volume(cluster, container.node).await?;
    for entry in swarm_entries(&manager, hostname).await? {
        if entry.manager_status.is_some() {
            let _ = update_spec(&manager, &entry, |spec| spec.role = Some(NodeSpecRoleEnum::WORKER)).await;
        }
        delete_entry(&manager, &entry).await?;
    }
    progress.done(hostname, "removed");
    Ok(started.elapsed())
}

async fn delete_entry(manager: &Docker, entry: &Node) -> Result<()> {
    let id = entry.id.clone().unwrap_or_default();
    match manager
        .delete_node(&id, Some(DeleteNodeOptionsBuilder::new().force(true).build()))
        .await
    {
        Err(e) if !is_not_found(&e) => Err(e).context("cannot remove the node from the swarm"),
        _ => Ok(()),
    }
}

/// Removes the volume of `node`, if it is that node's: a volume of the
/// same name that the cluster did not make is left alone.
async fn remove_volume(cluster: &Cluster, node: NodeName) -> Result<()> {
    let volume = node.volume(&cluster.name);
    let owned = match cluster.engine.docker.inspect_volume(&volume).await {
        Ok(found) => crate::labels::is_node_of(&found.labels, &cluster.name, node),
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect volume {volume}")),
    };
    if !owned {
        return Ok(());
    }
    let options = bollard::query_parameters::RemoveVolumeOptionsBuilder::new()
        .force(true)
        .build();
    match cluster.engine.docker.remove_volume(&volume, Some(options)).await {
        Err(e) if !is_not_found(&e) => Err(e).with_context(|| format!("cannot remove volume {volume}")),
        _ => Ok(()),
    }
}
