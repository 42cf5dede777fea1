//! Removing what carries a label: a whole cluster's objects, or one
//! operation's (its rollback). Containers first, then volumes, then
//! networks, as the engine requires.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use futures_util::future::try_join_all;
use tokio::time::Instant;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message, is_not_found};
use crate::labels::{self, Run};
use crate::naming::ClusterName;

/// What a removal removed.
#[derive(Debug, Clone, Default)]
pub struct Deleted {
    pub containers: usize,
    pub volumes: usize,
    pub networks: usize,
    pub elapsed: Duration,
}

/// The rollback of an operation that failed or was interrupted: removes
/// what it made (what carries its run label) and nothing else.
pub(crate) async fn remove_run(engine: &HostEngine, name: &ClusterName, run: &Run) -> Result<Deleted> {
    remove_labelled(engine, &run.filter(name)).await
}

/// Removes the containers, then the volumes, then the networks that match
/// an engine label `filter`.
pub(crate) async fn remove_labelled(engine: &HostEngine, filter: &HashMap<String, Vec<String>>) -> Result<Deleted> {
    let started = Instant::now();

    // The port forwarder first: it makes port containers, and must not make
    // one while the others go.
    let mut forwarder = filter.clone();
    forwarder.entry("label".into()).or_default().push(format!(
        "{}={}",
        labels::ROLE,
        crate::forwarder_container::FORWARDER_ROLE
    ));
    let mut containers = remove_containers(engine, &forwarder).await?;
    // Every other container with the label: nodes, port containers, and any
    // container a failed create left half-made; then once more, for a port
    // container whose making was under way when the forwarder went.
    containers += remove_containers(engine, filter).await?;
    containers += remove_containers(engine, filter).await?;

    let volumes = engine
        .docker
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(filter).build()))
        .await
        .context("cannot list volumes")?
        .volumes
        .unwrap_or_default();
    try_join_all(volumes.iter().map(|v| async move {
        let options = RemoveVolumeOptionsBuilder::new().force(true).build();
        match engine.docker.remove_volume(&v.name, Some(options)).await {
            Err(e) if !is_not_found(&e) => Err(e).with_context(|| format!("cannot remove volume {}", v.name)),
            _ => Ok(()),
        }
    }))
    .await?;

    let networks = engine
        .docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(filter).build()))
        .await
        .context("cannot list networks")?;
    for network in &networks {
        remove_network(
            engine,
            network.id.as_deref().unwrap_or_default(),
            network.name.as_deref().unwrap_or_default(),
        )
        .await?;
    }

    Ok(Deleted {
        containers,
        volumes: volumes.len(),
        networks: networks.len(),
        elapsed: started.elapsed(),
    })
}

/// Removes every container `filter` matches; says how many.
async fn remove_containers(engine: &HostEngine, filter: &HashMap<String, Vec<String>>) -> Result<usize> {
    let options = ListContainersOptionsBuilder::new().all(true).filters(filter).build();
    let listed: Vec<String> = engine
        .docker
        .list_containers(Some(options))
        .await
        .context("cannot list containers")?
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    try_join_all(listed.iter().map(|id| engine.remove_container(id))).await?;
    Ok(listed.len())
}

/// Removes a network. The engine may still count an endpoint for a moment
/// after the containers on it are gone, so "active endpoints" is retried;
/// an endpoint left behind by a container that no longer exists (a Docker
/// race seen when a hundred nodes go at once) is disconnected by force.
async fn remove_network(engine: &HostEngine, id: &str, name: &str) -> Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    let mut forced = false;
    loop {
        match engine.docker.remove_network(id).await {
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) if engine_message(&e).contains("active endpoints") && Instant::now() < deadline => {
                if !forced && started.elapsed() > Duration::from_secs(2) {
                    forced = true;
                    disconnect_stale_endpoints(engine, id).await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) if engine_message(&e).contains("active endpoints") => {
                return Err(Error::Other(format!(
                    "the engine still counts endpoints on network {name} although no container uses it (a known Docker race); restart the Docker engine, then run the delete again"
                )));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot remove network {name}")),
            Ok(()) => return Ok(()),
        }
    }
}

/// Disconnects, by force, every endpoint of network `id` whose container
/// the engine no longer knows. A container that exists is left alone, ours
/// or not.
async fn disconnect_stale_endpoints(engine: &HostEngine, id: &str) {
    let Ok(network) = engine.docker.inspect_network(id, None).await else {
        return;
    };
    for (container, endpoint) in network.containers.unwrap_or_default() {
        match engine.docker.inspect_container(&container, None).await {
            Err(e) if is_not_found(&e) => {}
            _ => continue,
        }
        let name = endpoint.name.unwrap_or(container);
        let request = bollard::models::NetworkDisconnectRequest {
            container: name.clone(),
            force: Some(true),
        };
        match engine.docker.disconnect_network(id, request).await {
            Ok(()) => tracing::debug!(endpoint = %name, "stale endpoint disconnected"),
            Err(error) => tracing::debug!(endpoint = %name, %error, "cannot disconnect a stale endpoint"),
        }
    }
}
