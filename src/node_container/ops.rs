//! Making, starting and watching a node container on the host engine.

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message, is_conflict};
use crate::labels;

use super::config::container_config;
use super::{API_PORT, API_PORT_NUMBER, NodePlan, Security};

/// Creates the node's volume and container, without starting it.
pub(crate) async fn prepare(engine: &HostEngine, plan: &NodePlan, security: &Security) -> Result<()> {
    let name = plan.container();
    let volume_name = plan.node.volume(&plan.cluster);
    let mut volume_labels = labels::node(&plan.cluster, plan.node);
    plan.run.mark(&mut volume_labels);
    let volume = VolumeCreateRequest {
        name: Some(volume_name.clone()),
        labels: Some(volume_labels),
        ..Default::default()
    };
    // The engine hands back a volume that exists already instead of making
    // one: a node must never mount (nor its rollback delete) a volume this
    // operation did not make.
    let volume = engine
        .docker
        .create_volume(volume)
        .await
        .with_context(|| format!("cannot create the volume of {name}"))?;
    if !plan.run.made(Some(&volume.labels)) {
        let whose = if volume.labels.contains_key(labels::CLUSTER) {
            "made by another swarmlab operation"
        } else {
            "not swarmlab's"
        };
        return Err(Error::NameTaken {
            kind: "volume",
            name: volume_name.clone(),
            whose: whose.to_string(),
            fix: format!("remove it (docker volume rm {volume_name}) or choose another cluster name"),
        });
    }
    create(engine, plan, security).await
}

/// How long a start waits for a network name to be unambiguous again.
const AMBIGUITY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts a prepared node container; where the engine refuses --privileged,
/// makes it again with the explicit capability profile and starts that.
pub(crate) async fn start(engine: &HostEngine, plan: &NodePlan, security: &Security, identity: &[u8]) -> Result<()> {
    let name = plan.container();
    let began = std::time::Instant::now();
    loop {
        match engine.docker.start_container(&name, None).await {
            Ok(()) => {
                tracing::debug!(container = %name, elapsed = ?began.elapsed(), "container started");
                // Its entrypoint waits for the identity before dockerd starts.
                return engine.hand_over(&name, identity).await;
            }
            Err(e) if refuses_privileged(&e) && was_privileged(engine, &name).await => {
                security.refuse_privileged();
                engine.remove_container(&name).await?;
                create(engine, plan, security).await?;
            }
            // A concurrent create of the same name made a network of the
            // same name after this one's claim (see cluster::create); it
            // removes it at once, and until then the engine cannot tell
            // which network a starting container means.
            Err(e) if engine_message(&e).contains("is ambiguous") && began.elapsed() < AMBIGUITY_WAIT => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(start_error(plan, e)),
        }
    }
}

async fn was_privileged(engine: &HostEngine, name: &str) -> bool {
    engine
        .docker
        .inspect_container(name, None)
        .await
        .ok()
        .and_then(|info| info.host_config?.privileged)
        .unwrap_or(false)
}

async fn create(engine: &HostEngine, plan: &NodePlan, security: &Security) -> Result<()> {
    let name = plan.container();
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let mut config = container_config(plan, security.privileged());
    // Engines after 20.10 take ALL as the capabilities they have, and
    // refuse to drop one they have not (engine 28.5 whose own bounding set
    // lacks SYS_RESOURCE: "invalid CapDrop"): ALL alone is the same profile
    // there. Once refused, the operation's later nodes go without it: a
    // create is refused once, as its first manager is made alone; nodes
    // made together (node add) may each be refused once.
    if security.cap_drop_refused() {
        without_cap_drop(&mut config);
    }
    let mut made = engine
        .docker
        .create_container(Some(options.clone()), config.clone())
        .await;
    if let Err(e) = &made
        && refuses_cap_drop(e)
        && config.host_config.as_ref().is_some_and(|h| h.cap_drop.is_some())
    {
        security.refuse_cap_drop();
        without_cap_drop(&mut config);
        made = engine.docker.create_container(Some(options), config).await;
    }
    made.map_err(|e| {
        if is_conflict(&e) {
            Error::NameTaken {
                kind: "container",
                name: name.clone(),
                whose: "not a node of this cluster".into(),
                fix: format!("rename or remove it (docker rm -f {name}), or choose another cluster name"),
            }
        } else {
            Error::Engine {
                context: format!("cannot create container {name}"),
                source: e,
            }
        }
    })?;
    Ok(())
}

fn without_cap_drop(config: &mut bollard::models::ContainerCreateBody) {
    if let Some(host) = config.host_config.as_mut() {
        host.cap_drop = None;
    }
}

fn refuses_cap_drop(error: &bollard::errors::Error) -> bool {
    engine_message(error).contains("invalid CapDrop")
}

fn refuses_privileged(error: &bollard::errors::Error) -> bool {
    let message = engine_message(error);
    message.contains("apply caps") || message.contains("operation not permitted")
}

fn start_error(plan: &NodePlan, error: bollard::errors::Error) -> Error {
    let message = engine_message(&error);
    if let Some(port) = plan
        .api_port
        .filter(|_| message.contains("allocated") || message.contains("address already in use"))
    {
        return Error::PortUnavailable(format!(
            "host port 127.0.0.1:{port} is already in use: choose another --api-port or leave it out (a cluster created with it needs it free for its first manager)"
        ));
    }
    Error::NodeFailed {
        node: plan.node.hostname(),
        reason: format!("its container did not start: {message}"),
    }
}

/// Makes a stopped node's container anew from `plan`, as privileged as it
/// was, on its volume: the same swarm node, data and all, with what its old
/// container was made without (its TLS identity then comes on standard
/// input when it starts).
pub(crate) async fn recreate(engine: &HostEngine, plan: &NodePlan) -> Result<()> {
    let name = plan.container();
    let security = Security::as_was(was_privileged(engine, &name).await);
    engine.remove_container(&name).await?;
    create(engine, plan, &security).await
}

/// The host port that reaches the node's engine API.
pub(crate) async fn published_api_port(engine: &HostEngine, name: &str) -> Result<u16> {
    let info = engine
        .docker
        .inspect_container(name, None)
        .await
        .with_context(|| format!("cannot inspect container {name}"))?;
    info.network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(API_PORT).cloned().flatten())
        .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port?.parse().ok()))
        .ok_or_else(|| Error::Other(format!("container {name} publishes no engine API port: is it running?")))
}

/// Fails with the end of the container's log when it is no longer running,
/// or has had to be restarted. For containers being brought up.
pub(crate) async fn ensure_running(engine: &HostEngine, name: &str, node: &str) -> Result<()> {
    let info = engine
        .docker
        .inspect_container(name, None)
        .await
        .with_context(|| format!("cannot inspect container {name}"))?;
    let state = info.state.unwrap_or_default();
    // A restart count above zero means it died once already, even if the
    // restart policy has it running again at this instant.
    let restarted = info.restart_count.unwrap_or(0) > 0;
    if state.running == Some(true) && state.restarting != Some(true) && !restarted {
        return Ok(());
    }
    let tail = log_tail(engine, name, 3).await;
    Err(Error::NodeFailed {
        node: node.to_string(),
        reason: format!(
            "its container stopped (exit code {}) before its engine answered{}",
            state.exit_code.unwrap_or_default(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ),
    })
}

/// Waits, by following the container's log, until its dockerd says it
/// listens on the TCP API port: no polling, no TLS handshakes against an
/// engine that is still starting. Fails when the log ends first (the
/// container stopped).
pub(crate) async fn wait_api_listening(engine: &HostEngine, name: &str, node: &str) -> Result<()> {
    let options = LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).build();
    let mut log = engine.docker.logs(name, Some(options));
    let mut pending = String::new();
    while let Some(Ok(chunk)) = log.next().await {
        pending.push_str(&chunk.to_string());
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if line.contains("API listen on") && line.contains(&format!(":{API_PORT_NUMBER}")) {
                return Ok(());
            }
        }
    }
    ensure_running(engine, name, node).await?;
    Err(Error::NodeFailed {
        node: node.to_string(),
        reason: "its log ended before its engine listened".into(),
    })
}

/// The last lines a container printed, joined on one line.
pub(crate) async fn log_tail(engine: &HostEngine, name: &str, lines: usize) -> String {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = engine.docker.logs(name, Some(options));
    let mut text = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push(chunk.to_string().trim().to_string());
    }
    crate::error::one_line(&text.join(" / "))
}

/// Runs `command` in a node's container, as root, and returns what it
/// printed; a non-zero exit is an error that carries its output.
pub(crate) async fn exec(engine: &HostEngine, container: &str, command: &[&str]) -> Result<String> {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    let docker = &engine.docker;
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(command.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("cannot run {} in {container}", command[0]))?;
    let mut output = String::new();
    if let StartExecResults::Attached { output: mut stream, .. } = docker
        .start_exec(&created.id, None)
        .await
        .with_context(|| format!("cannot run {} in {container}", command[0]))?
    {
        while let Some(Ok(chunk)) = stream.next().await {
            output.push_str(&chunk.to_string());
        }
    }
    let code = docker
        .inspect_exec(&created.id)
        .await
        .with_context(|| format!("cannot read how {} ended in {container}", command[0]))?
        .exit_code
        .unwrap_or(-1);
    if code != 0 {
        return Err(Error::Other(format!(
            "{} in {container} failed (exit {code}): {}",
            command[0],
            output.trim()
        )));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_said(message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message: message.into(),
        }
    }

    #[test]
    fn a_refused_drop_is_told_from_a_refused_privilege() {
        let drop = engine_said(
            "invalid CapDrop: capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\"",
        );
        assert!(refuses_cap_drop(&drop));
        assert!(!refuses_privileged(&drop));
        let privileged = engine_said("unable to apply caps: operation not permitted");
        assert!(refuses_privileged(&privileged));
        assert!(!refuses_cap_drop(&privileged));
    }
}
