//! Port containers: where the forwarder cannot listen where the client
//! connects (an engine in a VM as on Docker Desktop, a rootless engine, an
//! engine on another machine), each published port gets a small container
//! that the engine publishes on its 127.0.0.1 (which Docker Desktop and
//! rootless engines bring to the client's) and that passes connections on
//! to the forwarder over the cluster network, by name. The forwarder makes
//! and removes them as ports come and go.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder};

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message, is_not_found};
use crate::labels;
use crate::naming::ClusterName;

use super::BINARY;

/// A port container's `io.swarmlab.role`.
const PORT_ROLE: &str = "port";
/// The host port a port container publishes.
const PORT_LABEL: &str = "io.swarmlab.port";

pub(crate) fn port_container_name(cluster: &ClusterName, port: u16) -> String {
    format!("{cluster}-port-{port}")
}

/// A port container as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortContainer {
    pub(crate) port: u16,
    pub(crate) running: bool,
    pub(crate) address: Option<Ipv4Addr>,
}

/// The port containers of the cluster, running or not.
pub(crate) async fn port_containers(engine: &HostEngine, cluster: &ClusterName) -> Result<Vec<PortContainer>> {
    let mut filter = labels::filter(Some(cluster));
    filter
        .entry("label".into())
        .or_default()
        .push(format!("{}={PORT_ROLE}", labels::ROLE));
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filter).build();
    let listed = engine
        .docker
        .list_containers(Some(options))
        .await
        .context("cannot list the port containers")?;
    Ok(listed
        .into_iter()
        .filter_map(|c| {
            let address = c
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .and_then(|networks| networks.values().find_map(|e| e.ip_address.as_deref()?.parse().ok()));
            Some(PortContainer {
                port: c.labels?.get(PORT_LABEL)?.parse().ok()?,
                running: c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
                address,
            })
        })
        .collect())
}

/// Publishes `port` on the engine's 127.0.0.1 through a port container at
/// `address` that passes connections to the forwarder at `to`, made of the
/// forwarder's own image. Says in one line when the engine cannot publish
/// it (taken).
pub(crate) async fn ensure_port(
    engine: &HostEngine,
    cluster: &ClusterName,
    image: &str,
    port: u16,
    address: Ipv4Addr,
    to: Ipv4Addr,
) -> Result<()> {
    let name = port_container_name(cluster, port);
    let mut container_labels = labels::cluster(cluster);
    container_labels.insert(labels::ROLE.into(), PORT_ROLE.into());
    container_labels.insert(PORT_LABEL.into(), port.to_string());
    let inner = format!("{port}/tcp");
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![BINARY.into()]),
        cmd: Some(vec![
            "ports".into(),
            "pass".into(),
            "--port".into(),
            port.to_string(),
            "--to".into(),
            to.to_string(),
        ]),
        labels: Some(container_labels),
        exposed_ports: Some(vec![inner.clone()]),
        host_config: Some(HostConfig {
            network_mode: Some(cluster.network()),
            port_bindings: Some(HashMap::from([(
                inner,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(port.to_string()),
                }]),
            )])),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            pids_limit: Some(64),
            memory: Some(64 << 20),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([("max-size".into(), "1m".into())])),
            }),
            ..Default::default()
        }),
        networking_config: Some(super::fixed_address(cluster, address)),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    match engine.docker.create_container(Some(options), body).await {
        Ok(_) => {}
        // Made in an earlier round whose start failed: start it again below.
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create the port container {name}")),
    }
    engine.docker.start_container(&name, None).await.map_err(|e| {
        let said = engine_message(&e);
        if said.contains("already allocated") || said.contains("address already in use") {
            Error::PortUnavailable(format!(
                "127.0.0.1:{port} is already in use on the engine's host: free the port or publish another one (the other ports keep working)"
            ))
        } else {
            Error::Other(format!("cannot start the port container {name}: {said}"))
        }
    })
}

/// Removes the port container of `port`, if there is one.
pub(crate) async fn remove_port(engine: &HostEngine, cluster: &ClusterName, port: u16) -> Result<()> {
    let name = port_container_name(cluster, port);
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .build();
    match engine.docker.remove_container(&name, Some(options)).await {
        Err(e) if !is_not_found(&e) => Err(e).with_context(|| format!("cannot remove the port container {name}")),
        _ => Ok(()),
    }
}
