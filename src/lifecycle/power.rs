//! Stopping and starting a whole cluster. A stopped cluster keeps its
//! swarm in its volumes and comes back as the same swarm.

use std::time::Duration;

use bollard::query_parameters::{ListContainersOptionsBuilder, StopContainerOptionsBuilder};
use futures_util::future::try_join_all;
use tokio::time::Instant;

use crate::convergence::Observer;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::labels::{self, Run};
use crate::naming::ClusterName;
use crate::progress::Progress;
use crate::tls::ClusterTls;

use crate::cluster::cluster_names;

/// The cluster's containers: name, whether it runs, and whether it is a
/// node (not the port forwarder or one of its port containers).
async fn containers(engine: &HostEngine, name: &ClusterName) -> Result<Vec<(String, bool, bool)>> {
    if !cluster_names(engine).await?.contains(name) {
        return Err(Error::ClusterNotFound(name.to_string()));
    }
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&labels::filter(Some(name)))
        .build();
    Ok(engine
        .docker
        .list_containers(Some(options))
        .await
        .context("cannot list containers")?
        .into_iter()
        .filter_map(|c| {
            let running = c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING);
            let node = c.labels.as_ref().is_some_and(|l| l.contains_key(labels::NODE));
            Some((c.names?.first()?.trim_start_matches('/').to_string(), running, node))
        })
        .collect())
}

/// Stops every container of the cluster; each node's engine shuts down
/// cleanly and keeps its state.
pub async fn stop(engine: &HostEngine, name: &ClusterName, progress: &dyn Progress) -> Result<Duration> {
    let started = Instant::now();
    let all = containers(engine, name).await?;
    // The forwarder first, then its port containers: it would start again
    // a port container that it saw stopped.
    let forwarder = crate::forwarder_container::container_name(name);
    let running: Vec<_> = all.iter().filter(|c| c.1).collect();
    let (first, rest): (Vec<_>, Vec<_>) = running.into_iter().partition(|c| c.0 == forwarder);
    let (ports, nodes): (Vec<_>, Vec<_>) = rest.into_iter().partition(|c| !c.2);
    for group in [first, ports, nodes] {
        stop_all(engine, &group, progress).await?;
    }
    Ok(started.elapsed())
}

async fn stop_all(engine: &HostEngine, containers: &[&(String, bool, bool)], progress: &dyn Progress) -> Result<()> {
    try_join_all(containers.iter().map(|(container, _, _)| async move {
        progress.step(container, "stopping");
        let options = StopContainerOptionsBuilder::new().t(10).build();
        engine
            .docker
            .stop_container(container, Some(options))
            .await
            .with_context(|| format!("cannot stop {container}"))?;
        progress.done(container, "stopped");
        Ok::<_, Error>(())
    }))
    .await
    .map(drop)
}

/// Starts every container of the cluster (renewing its certificates first
/// when they are due) and waits until the swarm is whole again: every node
/// Ready, every service at its desired replicas.
pub async fn start(
    engine: &HostEngine,
    name: &ClusterName,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<Duration> {
    let started = Instant::now();
    if !cluster_names(engine).await?.contains(name) {
        return Err(Error::ClusterNotFound(name.to_string()));
    }
    super::renew::if_due(engine, name, progress).await?;
    let all = containers(engine, name).await?;
    let tls = ClusterTls::open(engine, name).await?;
    let identity = tls.node_bundle()?;
    // Nodes only: the forwarder is seen to below, and it makes its port
    // containers again itself.
    try_join_all(
        all.iter()
            .filter(|(_, running, node)| !*running && *node)
            .map(|(container, _, _)| {
                let identity = &identity;
                async move {
                    progress.step(container, "starting");
                    engine
                        .docker
                        .start_container(container, None)
                        .await
                        .with_context(|| format!("cannot start {container}"))?;
                    // A node made anew waits for its identity; one that has it
                    // does not read this.
                    engine.hand_over(container, identity).await
                }
            }),
    )
    .await?;
    match crate::forwarder_container::ensure(engine, name, &tls, &Run::new()).await {
        Err(Error::Prerequisite(why)) => progress.note(&format!("warning: {why}")),
        other => other?,
    }
    progress.note("waiting for every node to be Ready and every service to run");
    Observer::new(engine, name).converged(timeout).await?;
    Ok(started.elapsed())
}
