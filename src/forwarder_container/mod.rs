//! The port forwarder's container, host infrastructure beside the node
//! containers: `swarmlab ports serve` (see `ports`) in an image of swarmlab
//! (see `image`), on the host's network and PID namespace where the engine
//! is this machine's (to listen on 127.0.0.1 and enter the nodes' network
//! namespaces), else on the cluster network behind port containers; and
//! the status it writes there, which `swarmlab ports` reads.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder};
use futures_util::TryStreamExt;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message, is_not_found};
use crate::labels::{self, Run};
use crate::naming::ClusterName;
use crate::tls::ClusterTls;

mod demo;
mod image;
mod port;
mod reach;
mod status;

pub(crate) use demo::demo_binary;
pub(crate) use port::{PortContainer, ensure_port, port_containers, remove_port};
pub use reach::Reach;

pub use status::{BackendStatus, ForwarderStatus, PortPath, PortState, PortStatus, PublishMode, STATUS_PATH};

/// Limits of the forwarder's container: processes and threads, and memory.
pub(crate) const FORWARDER_PIDS: i64 = 512;
pub(crate) const FORWARDER_MEMORY: i64 = 256 << 20;
/// The forwarder's `io.swarmlab.role`.
pub(crate) const FORWARDER_ROLE: &str = "ports";
const BINARY: &str = "/swarmlab";
/// Where the forwarder's swarmlab keeps the cluster's client identity.
const HOME: &str = "/home/swarmlab";

pub fn container_name(cluster: &ClusterName) -> String {
    format!("{cluster}-ports")
}

/// A fixed address on the cluster network, for a container's creation.
pub(crate) fn fixed_address(cluster: &ClusterName, address: std::net::Ipv4Addr) -> bollard::models::NetworkingConfig {
    bollard::models::NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            cluster.network(),
            bollard::models::EndpointSettings {
                ipam_config: Some(bollard::models::EndpointIpamConfig {
                    ipv4_address: Some(address.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )])),
    }
}

/// The image the cluster's forwarder runs, for its port containers.
pub(crate) async fn own_image(engine: &HostEngine, cluster: &ClusterName) -> Result<String> {
    let name = container_name(cluster);
    let info = engine
        .docker
        .inspect_container(&name, None)
        .await
        .with_context(|| format!("cannot inspect {name}"))?;
    info.config
        .and_then(|c| c.image)
        .ok_or_else(|| Error::Other(format!("{name} names no image")))
}

/// Starts the cluster's forwarder unless it runs already; a forwarder made
/// here carries `run`'s label.
pub async fn ensure(engine: &HostEngine, cluster: &ClusterName, tls: &ClusterTls, run: &Run) -> Result<()> {
    let name = container_name(cluster);
    let mut found = engine.docker.inspect_container(&name, None).await;
    // A forwarder made by a swarmlab that handed it its key in the
    // environment goes: the key shows in `docker inspect`.
    if let Ok(info) = &found
        && is_forwarder_of(info.config.as_ref().and_then(|c| c.labels.as_ref()), cluster)
        && info
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .is_some_and(|env| env.iter().any(|e| e.starts_with("SWARMLAB_TLS_KEY=")))
    {
        engine.remove_container(&name).await?;
        found = engine.docker.inspect_container(&name, None).await;
    }
    match found {
        Ok(info) if !is_forwarder_of(info.config.as_ref().and_then(|c| c.labels.as_ref()), cluster) => {
            return Err(Error::NameTaken {
                kind: "container",
                name: name.clone(),
                whose: format!("not the port forwarder of cluster {cluster}"),
                fix: format!("rename or remove it (docker rm -f {name}), then run `swarmlab ports --name {cluster}`"),
            });
        }
        Ok(info) if info.state.as_ref().and_then(|s| s.running) == Some(true) => return Ok(()),
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {
            let image = image::ensure(engine).await?;
            let network = engine
                .docker
                .inspect_network(&cluster.network(), None)
                .await
                .with_context(|| format!("cannot inspect network {}", cluster.network()))?;
            let placed = match Reach::of(engine, &network).await? {
                Reach::Loopback => None,
                Reach::Published => Some(crate::addressing::forwarder_address(&crate::addressing::subnet_of(
                    &network,
                )?)),
            };
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            engine
                .docker
                .create_container(Some(options), config(engine, cluster, tls, &image, run, placed)?)
                .await
                .with_context(|| format!("cannot create the port forwarder {name}"))?;
        }
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {name}")),
    }
    engine
        .docker
        .start_container(&name, None)
        .await
        .with_context(|| format!("cannot start the port forwarder {name}"))?;
    // A forwarder that has its identity already does not read it again.
    engine.hand_over(&name, &tls.client_bundle()?).await
}

fn is_forwarder_of(labels: Option<&HashMap<String, String>>, cluster: &ClusterName) -> bool {
    labels.is_some_and(|l| {
        l.get(labels::CLUSTER).map(String::as_str) == Some(cluster.as_str())
            && l.get(labels::ROLE).map(String::as_str) == Some(FORWARDER_ROLE)
    })
}

fn config(
    engine: &HostEngine,
    cluster: &ClusterName,
    tls: &ClusterTls,
    image: &str,
    run: &Run,
    // Where it sits on the cluster network, when the engine's host network
    // is not the client's (`Reach::Published`).
    placed: Option<std::net::Ipv4Addr>,
) -> Result<ContainerCreateBody> {
    let mut env = vec![crate::tls::STDIN_ENV.to_string()];
    env.push(format!("SWARMLAB_HOME={HOME}"));
    env.push("SWARMLAB_DOCKER_HOST=unix:///var/run/docker.sock".into());
    // The only CA the forwarder trusts: its cluster's (the image has no others).
    let ca = Path::new(HOME).join(tls.relative_path()).join("ca.pem");
    env.push(format!("SSL_CERT_FILE={}", ca.display()));
    let socket = engine
        .endpoint
        .host
        .strip_prefix("unix://")
        .unwrap_or("/var/run/docker.sock")
        .to_string();
    let mut container_labels = labels::cluster(cluster);
    container_labels.insert(labels::ROLE.into(), FORWARDER_ROLE.into());
    run.mark(&mut container_labels);
    let mut cmd = vec!["ports".into(), "serve".into(), "--name".into(), cluster.to_string()];
    if placed.is_some() {
        cmd.push("--published".into());
    }
    let mut host = HostConfig {
        network_mode: Some("host".into()),
        pid_mode: Some("host".into()),
        binds: Some(vec![format!("{socket}:/var/run/docker.sock")]),
        // Entering another network namespace takes CAP_SYS_ADMIN, and
        // opening it, ptrace-level access to the node's process.
        cap_add: Some(vec!["SYS_ADMIN".into(), "SYS_PTRACE".into()]),
        security_opt: Some(vec!["apparmor=unconfined".into(), "seccomp=unconfined".into()]),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        // Bounds on what a runaway forwarder can take from the host. It
        // runs a thread per core and one more, holds at most its cap of
        // connections (two sockets and 16 KiB of buffers each), and
        // idles at a few MiB.
        pids_limit: Some(FORWARDER_PIDS),
        memory: Some(FORWARDER_MEMORY),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([("max-size".into(), "1m".into())])),
        }),
        ..Default::default()
    };
    let mut networking = None;
    if let Some(address) = placed {
        // On the cluster network, where the nodes' addresses answer, at an
        // address of its own that no node will want; it enters no
        // namespace, so it needs no added capability.
        host.network_mode = Some(cluster.network());
        host.pid_mode = None;
        host.cap_add = None;
        host.security_opt = None;
        networking = Some(fixed_address(cluster, address));
    }
    Ok(ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![BINARY.into()]),
        cmd: Some(cmd),
        env: Some(env),
        // Its client identity comes on standard input, once (see `ensure`).
        open_stdin: Some(true),
        stdin_once: Some(true),
        labels: Some(container_labels),
        host_config: Some(host),
        networking_config: networking,
        ..Default::default()
    })
}

/// What the forwarder last wrote about itself.
pub async fn read_status(engine: &HostEngine, cluster: &ClusterName) -> Result<ForwarderStatus> {
    let name = container_name(cluster);
    let options = DownloadFromContainerOptionsBuilder::new().path(STATUS_PATH).build();
    let chunks: Vec<bytes::Bytes> = engine
        .docker
        .download_from_container(&name, Some(options))
        .try_collect()
        .await
        .map_err(|e| {
            Error::Other(format!(
                "the port forwarder of cluster {cluster} has no status yet ({}): `docker logs {name}` shows what it does",
                engine_message(&e)
            ))
        })?;
    let archive = chunks.concat();
    let mut entries = tar::Archive::new(archive.as_slice());
    let mut entry = entries
        .entries()
        .context("cannot read the forwarder status")?
        .next()
        .ok_or_else(|| Error::Other("the forwarder status is empty".into()))?
        .context("cannot read the forwarder status")?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).context("cannot read the forwarder status")?;
    serde_json::from_str(&text).map_err(|e| Error::Other(format!("the forwarder status is unreadable: {e}")))
}
