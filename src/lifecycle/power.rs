//! Stopping and starting a whole cluster. A stopped cluster keeps its
//! swarm in its volumes and comes back as the same swarm.

use std::time::{Duration, SystemTime};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::future::try_join_all;
use tokio::time::Instant;

use crate::convergence::Observer;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::labels::{self, Run};
use crate::naming::ClusterName;
use crate::node_container;
use crate::progress::Progress;
use crate::tls::{ClusterTls, NODE_TLS_DIR};

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

/// Renews certificates near their end (or made before swarmlab dated them
/// and dropped the CA's key) while the whole cluster is stopped: a new CA,
/// node and client identities; each stopped node container gets its new
/// identity in its own layer, where its entrypoint finds it, and the
/// forwarder's container goes (`start` makes it anew). Returns whether it
/// renewed.
async fn renew_if_due(
    engine: &HostEngine,
    name: &ClusterName,
    all: &[(String, bool)],
    progress: &dyn Progress,
) -> Result<bool> {
    let tls = ClusterTls::open(engine, name).await?;
    if !tls.needs_renewal(SystemTime::now()) {
        return Ok(false);
    }
    if all.iter().any(|(_, running)| *running) {
        progress.note(
            "the cluster's TLS certificates are due for renewal: `swarmlab stop`, then `swarmlab start`, renews them",
        );
        return Ok(false);
    }
    let subnet = crate::cluster::subnet(engine, name).await?;
    tls.renew(name, &subnet)?;
    let archive = identity_archive(&tls)?;
    let forwarder = crate::forwarder_container::container_name(name);
    for (container, _) in all {
        if *container == forwarder {
            node_container::remove(engine, container).await?;
            continue;
        }
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        engine
            .docker
            .upload_to_container(container, Some(options), bollard::body_full(archive.clone().into()))
            .await
            .with_context(|| format!("cannot give {container} its renewed TLS identity"))?;
    }
    progress.note("renewed the cluster's TLS certificates: a new CA, good for a year");
    Ok(true)
}

/// The nodes' TLS identity as a tar archive of the files the entrypoint
/// would write, for a container's root.
fn identity_archive(tls: &ClusterTls) -> Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (file, contents) in tls.node_files()? {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(if file.contains("key") { 0o600 } else { 0o644 });
        header.set_cksum();
        let path = format!("{}/{file}", NODE_TLS_DIR.trim_start_matches('/'));
        archive
            .append_data(&mut header, path, contents.as_slice())
            .context("cannot build the TLS archive")?;
    }
    archive.into_inner().context("cannot build the TLS archive")
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

/// Starts every container of the cluster and waits until the swarm is whole
/// again: every node Ready, every service at its desired replicas.
pub async fn start(
    engine: &HostEngine,
    name: &ClusterName,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<Duration> {
    let started = Instant::now();
    let all = containers(engine, name).await?;
    let renewed = renew_if_due(engine, name, &all, progress).await?;
    let forwarder = crate::forwarder_container::container_name(name);
    try_join_all(
        all.iter()
            .filter(|(_, running)| !*running)
            // A renewal removed the forwarder: it is made anew below.
            .filter(|(container, _)| !(renewed && *container == forwarder))
            .map(|(container, _)| async move {
                progress.step(container, "starting");
                engine
                    .docker
                    .start_container(container, None)
                    .await
                    .with_context(|| format!("cannot start {container}"))
            }),
    )
    .await?;
    if renewed {
        // Its container went with the old identity.
        let tls = ClusterTls::open(engine, name).await?;
        crate::forwarder_container::ensure(engine, name, &tls, &Run::new()).await?;
    }
    progress.note("waiting for every node to be Ready and every service to run");
    Observer::new(engine, name).converged(timeout).await?;
    Ok(started.elapsed())
}
