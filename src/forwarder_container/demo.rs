//! The demo service's binary for a client that carries none (one built on
//! macOS or Windows, where the demo could not be compiled for Linux): the
//! forwarder's image is a Linux swarmlab, which does carry it, and a
//! short-lived container of that image writes it out.

use std::collections::HashMap;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::labels;

/// The `io.swarmlab.role` of such a container: it belongs to no cluster.
const ROLE: &str = "demo-source";
/// The (hidden) command that writes the demo's binary to standard output.
const WRITE_DEMO: [&str; 2] = ["image", "write-demo"];

/// The demo service's static Linux binary, as the forwarder image has it.
pub(crate) async fn demo_binary(engine: &HostEngine) -> Result<Vec<u8>> {
    let image = super::image::ensure(engine).await.map_err(|e| match e {
        // The image the user named is missing: that error says which.
        Error::Prerequisite(why) if std::env::var(super::image::PORTS_IMAGE_VAR).is_ok_and(|v| !v.is_empty()) => {
            Error::Prerequisite(why)
        }
        Error::Prerequisite(_) => Error::Prerequisite(
            "this swarmlab carries no Linux demo service, nor a forwarder to get it from: build it on Linux, or with a forwarder inside (SWARMLAB_FORWARDER_BINARY, see the README), or name a swarmlab forwarder image in SWARMLAB_PORTS_IMAGE".into(),
        ),
        other => other,
    })?;
    remove_stale(engine).await;
    let config = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: Some(WRITE_DEMO.iter().map(|s| s.to_string()).collect()),
        labels: Some(HashMap::from([(labels::ROLE.to_string(), ROLE.to_string())])),
        // Gone by itself once it exits, even if this process is not there
        // to remove it.
        host_config: Some(HostConfig {
            auto_remove: Some(true),
            network_mode: Some("none".into()),
            memory: Some(super::FORWARDER_MEMORY),
            pids_limit: Some(super::FORWARDER_PIDS),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = engine
        .docker
        .create_container(Some(CreateContainerOptionsBuilder::new().build()), config)
        .await
        .with_context(|| format!("cannot create a container of {image} to get the demo from"))?;
    let outcome = hand_out(engine, &created.id).await;
    if outcome.is_err() {
        let _ = crate::node_container::remove(engine, &created.id).await;
    }
    let (binary, said, status) = outcome?;
    if status.is_some_and(|code| code != 0) || !is_whole_elf(&binary) {
        let said = crate::error::one_line(String::from_utf8_lossy(&said).trim());
        let code = status.map_or("unknown".to_string(), |code| code.to_string());
        return Err(Error::Other(format!(
            "the forwarder image {image} did not hand out the demo service (exit code {code}{}{said})",
            if said.is_empty() { "" } else { ": " }
        )));
    }
    Ok(binary)
}

/// A 64-bit little-endian ELF file that ends where its section headers do
/// (the linker puts them last): not cut short on the way.
fn is_whole_elf(bytes: &[u8]) -> bool {
    if bytes.len() < 64 || !bytes.starts_with(b"\x7fELF") || bytes[4] != 2 || bytes[5] != 1 {
        return false;
    }
    let number = |at: usize, width: usize| {
        bytes[at..at + width]
            .iter()
            .rev()
            .fold(0u64, |n, &byte| (n << 8) | u64::from(byte))
    };
    let (offset, entry_size, entries) = (number(0x28, 8), number(0x3A, 2), number(0x3C, 2));
    offset.checked_add(entry_size * entries) == Some(bytes.len() as u64)
}

/// Runs the container: what it wrote to stdout and stderr, and its exit code
/// once the engine has removed it (as `docker run --rm` waits); None when
/// it was gone before the wait reached the engine.
async fn hand_out(engine: &HostEngine, id: &str) -> Result<(Vec<u8>, Vec<u8>, Option<i64>)> {
    let attach = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut attached = engine
        .docker
        .attach_container(id, Some(attach))
        .await
        .context("cannot attach to the container that hands out the demo")?;
    // Sent before the start, so that the removal most likely comes after.
    let (docker, container) = (engine.docker.clone(), id.to_string());
    let removed = tokio::spawn(async move {
        let options = WaitContainerOptionsBuilder::new().condition("removed").build();
        docker.wait_container(&container, Some(options)).next().await
    });
    tokio::task::yield_now().await;
    engine
        .docker
        .start_container(id, None)
        .await
        .context("cannot start the container that hands out the demo")?;
    let (mut binary, mut said) = (Vec::new(), Vec::new());
    while let Some(chunk) = attached.output.next().await {
        match chunk.context("reading the demo from its container failed")? {
            LogOutput::StdOut { message } => binary.extend_from_slice(&message),
            LogOutput::StdErr { message } => said.extend_from_slice(&message),
            _ => {}
        }
    }
    let status = match removed.await {
        Ok(Some(Ok(response))) => Some(response.status_code),
        // bollard reports a non-zero exit code as an error of its own.
        Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => Some(code),
        Ok(Some(Err(e))) if crate::error::is_not_found(&e) => None,
        Ok(Some(Err(e))) => return Err(e).context("waiting for the container that hands out the demo failed"),
        Ok(None) | Err(_) => None,
    };
    Ok((binary, said, status))
}

/// Removes such containers that an interrupted build-demo left (created,
/// never started, so never removed by themselves). Best effort.
async fn remove_stale(engine: &HostEngine) {
    let label = format!("{}={ROLE}", labels::ROLE);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&HashMap::from([
            ("label", vec![label.as_str()]),
            ("status", vec!["created"]),
        ]))
        .build();
    if let Ok(listed) = engine.docker.list_containers(Some(options)).await {
        for id in listed.into_iter().filter_map(|c| c.id) {
            let _ = crate::node_container::remove(engine, &id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_whole_elf;

    #[test]
    fn a_demo_cut_short_on_the_way_is_told_from_a_whole_one() {
        // The demo build.rs made for this build (none in a portable one).
        let whole: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/quotes"));
        if whole.is_empty() {
            return;
        }
        assert!(is_whole_elf(whole));
        assert!(!is_whole_elf(&whole[..whole.len() - 1]));
        assert!(!is_whole_elf(&whole[..4096]));
        assert!(!is_whole_elf(b"swarmlab: error: no demo"));
    }
}
