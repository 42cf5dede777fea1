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

async fn containers(engine: &HostEngine, name: &ClusterName) -> Result<Vec<(String, bool)>> {
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
            Some((c.names?.first()?.trim_start_matches('/').to_string(), running))
        })
        .collect())
}

/// Stops every container of the cluster; each node's engine shuts down
/// cleanly and keeps its state.
pub async fn stop(engine: &HostEngine, name: &ClusterName, progress: &dyn Progress) -> Result<Duration> {
    let started = Instant::now();
    let all = containers(engine, name).await?;
    try_join_all(
        all.iter()
            .filter(|(_, running)| *running)
            .map(|(container, _)| async move {
                progress.step(container, "stopping");
                let options = StopContainerOptionsBuilder::new().t(10).build();
                engine
                    .docker
                    .stop_container(container, Some(options))
                    .await
                    .with_context(|| format!("cannot stop {container}"))?;
                progress.done(container, "stopped");
                Ok::<_, Error>(())
            }),
    )
    .await?;
    Ok(started.elapsed())
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
    let forwarder = crate::forwarder_container::container_name(name);
    try_join_all(
        all.iter()
            .filter(|(container, running)| !*running && *container != forwarder)
            .map(|(container, _)| {
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
