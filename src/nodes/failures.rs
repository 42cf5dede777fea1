//! Nodes failing and coming back: a crash (the container killed, kept),
//! a start (the same swarm node again), a restart (a fresh container under
//! the same name and address, as the blog does after `docker rm -f`).

use std::time::Duration;

use bollard::models::NodeSpecRoleEnum;
use tokio::time::Instant;

use crate::cluster::{Budget, Cluster};
use crate::convergence::Observer;
use crate::error::{Context, Error, Result};
use crate::naming::{NodeName, Role};
use crate::progress::Progress;
use crate::swarm;

use super::{Timings, delete_entry, give_images, remove_volume, swarm_entries, update_spec, wait_marked_down};

/// Pulls the plug on a node: its container is killed at once and kept.
/// Returns the time until the swarm marked it down and until every service
/// ran its replicas elsewhere again.
pub async fn crash(cluster: &Cluster, hostname: &str, timeout: Duration, progress: &dyn Progress) -> Result<Timings> {
    let container = cluster.node(hostname)?;
    if !container.running {
        return Err(Error::invalid(format!(
            "{hostname} is not running ({}): nothing to crash",
            container.state
        )));
    }
    // A swarm that answers to begin with; a leader election going on (a
    // manager crashed just before) is waited out here.
    Observer::new(&cluster.engine, &cluster.name)
        .until(timeout, "a manager to answer", |_| true)
        .await?;
    let mut observer = Observer::new(&cluster.engine, &cluster.name).stopping_on_quorum_loss();
    let started = Instant::now();
    cluster
        .engine
        .docker
        .kill_container(&container.name, None::<bollard::query_parameters::KillContainerOptions>)
        .await
        .with_context(|| format!("cannot kill {}", container.name))?;
    let mut timings = Timings::default();
    timings.mark("killed", started);
    progress.step(hostname, "killed; waiting for the swarm to notice");
    let recovered = async {
        wait_marked_down(&mut observer, hostname, timeout, &mut timings, started, progress).await?;
        observer.converged(timeout).await?;
        timings.mark("everything running again", started);
        Ok(())
    };
    match recovered.await {
        Ok(()) => progress.done(hostname, "crashed; the swarm recovered"),
        // The managers left cannot elect a leader: nothing more happens by
        // itself, and the timings say so.
        Err(Error::QuorumLost { up, managers, .. }) => {
            timings.mark("quorum lost", started);
            progress.done(
                hostname,
                &format!("crashed; the swarm lost its quorum ({up} of {managers} managers up): `swarmlab recover` or bring managers back"),
            );
        }
        Err(error) => return Err(error),
    }
    Ok(timings)
}

/// Powers a crashed or stopped node on again; it rejoins as the same node.
pub async fn start(cluster: &Cluster, hostname: &str, timeout: Duration, progress: &dyn Progress) -> Result<Timings> {
    let container = cluster.node(hostname)?;
    let (_, manager) = cluster.any_manager().await?;
    let identity = swarm_entries(&manager, hostname)
        .await?
        .first()
        .and_then(|n| n.id.clone());
    let started = Instant::now();
    let mut timings = Timings::default();
    progress.step(hostname, "starting its container");
    cluster
        .engine
        .docker
        .start_container(&container.name, None)
        .await
        .with_context(|| format!("cannot start {}", container.name))?;
    let mut observer = Observer::new(&cluster.engine, &cluster.name);
    progress.step(hostname, "waiting until it is Ready");
    observer
        .until(timeout, &format!("{hostname} to be Ready"), |state| {
            state.ready.contains(hostname)
        })
        .await?;
    timings.mark("Ready", started);
    let now = swarm_entries(&manager, hostname)
        .await?
        .first()
        .and_then(|n| n.id.clone());
    if identity.is_some() && now != identity {
        return Err(Error::NodeFailed {
            node: hostname.to_string(),
            reason: "it came back as a different swarm node".into(),
        });
    }
    observer.converged(timeout).await?;
    timings.mark("cluster converged", started);
    progress.done(hostname, "back, as the same swarm node");
    Ok(timings)
}

/// The blog's recovery of a node whose container is gone or broken: its
/// stale entry leaves the swarm, a fresh container with the same name and
/// address joins, and gets the cluster's images.
pub async fn restart(cluster: &Cluster, hostname: &str, timeout: Duration, progress: &dyn Progress) -> Result<Timings> {
    let node: NodeName = hostname.parse()?;
    let known = cluster.container_of(hostname);
    let role_in_swarm = {
        let (_, manager) = cluster.any_manager().await?;
        swarm_entries(&manager, hostname).await?.first().map(|n| {
            if n.manager_status.is_some() {
                Role::Manager
            } else {
                Role::Worker
            }
        })
    };
    if known.is_none() && role_in_swarm.is_none() {
        return Err(Error::invalid(format!(
            "cluster {} has no node {hostname:?}, in containers or in the swarm",
            cluster.name
        )));
    }
    // A container or volume of someone else's under the node's names
    // would make the new node fail after the old one's traces are gone:
    // refuse first.
    let name = node.container(&cluster.name);
    let taken = |kind: &'static str, remove: &str| Error::NameTaken {
        kind,
        name: name.clone(),
        whose: format!("not a node of cluster {}", cluster.name),
        fix: format!("rename or remove it ({remove} {name}), then restart {hostname} again"),
    };
    if known.is_none()
        && let Ok(other) = cluster.engine.docker.inspect_container(&name, None).await
        && !crate::labels::is_node_of(
            &other.config.and_then(|c| c.labels).unwrap_or_default(),
            &cluster.name,
            node,
        )
    {
        return Err(taken("container", "docker rm -f"));
    }
    if let Ok(volume) = cluster.engine.docker.inspect_volume(&node.volume(&cluster.name)).await
        && !crate::labels::is_node_of(&volume.labels, &cluster.name, node)
    {
        return Err(taken("volume", "docker volume rm"));
    }
    let role = role_in_swarm.unwrap_or(node.role);
    let started = Instant::now();
    let mut timings = Timings::default();
    progress.step(hostname, "removing what is left of it");
    // Only the cluster's own container (listed by its labels) goes: a
    // container of someone else's under the same name stays, and the new
    // one's creation then fails with a clear message.
    if let Some(known) = known {
        cluster.engine.remove_container(&known.id).await?;
    }
    remove_volume(cluster, node).await?;
    let (manager_node, manager) = cluster.any_manager_but(hostname).await?;
    for entry in swarm_entries(&manager, hostname).await? {
        if entry.manager_status.is_some() {
            update_spec(&manager, &entry, |spec| spec.role = Some(NodeSpecRoleEnum::WORKER)).await?;
        }
        delete_entry(&manager, &entry).await?;
    }
    timings.mark("stale entry removed", started);

    let launcher = crate::cluster::launcher_for(cluster, progress, Budget::timeout(started, timeout)).await?;
    let plan = cluster.plan(node, &launcher.run).await?;
    let rejoin = async {
        launcher.launch(&plan).await?;
        let docker = launcher.wait_engine(&plan).await?;
        progress.step(hostname, "joining the swarm");
        let tokens = swarm::join_tokens(&manager).await?;
        let token = tokens.for_role(role);
        let manager_address = manager_node
            .address
            .ok_or_else(|| Error::Other("the manager has no address".into()))?;
        swarm::join(&docker, plan.address, manager_address, token, launcher.deadline()).await
    };
    if let Err(error) = rejoin.await {
        // What this restart made goes; `node restart` can be run again.
        let _ = launcher.roll_back(&cluster.name).await;
        return Err(error);
    }
    let hostnames = std::iter::once(hostname.to_string()).collect();
    swarm::wait_ready(&manager, &hostnames, started + timeout, timeout).await?;
    swarm::label_node(&manager, hostname, &plan.settings.labels).await?;
    timings.mark("rejoined, Ready", started);
    give_images(cluster, &[hostname.to_string()], progress).await?;
    timings.mark("images copied", started);
    Observer::new(&cluster.engine, &cluster.name).converged(timeout).await?;
    timings.mark("cluster converged", started);
    progress.done(hostname, "recreated and rejoined");
    Ok(timings)
}
