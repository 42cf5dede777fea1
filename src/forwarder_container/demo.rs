//! The demo service's binary for a client that carries none (one built on
//! macOS or Windows, where the demo could not be compiled for Linux): the
//! forwarder's image is a Linux swarmlab, which does carry it, and a
//! short-lived container of that image writes it out.

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, CreateContainerOptionsBuilder};
use futures_util::StreamExt;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::labels::{self, Run};

/// The forwarder's `io.swarmlab.role` when it only hands out the demo.
const ROLE: &str = "demo-source";
/// The (hidden) command that writes the demo's binary to standard output.
const WRITE_DEMO: [&str; 2] = ["image", "write-demo"];

/// The demo service's static Linux binary, as the forwarder image has it.
pub(crate) async fn demo_binary(engine: &HostEngine) -> Result<Vec<u8>> {
    let image = super::image::ensure(engine).await?;
    let mut container_labels = std::collections::HashMap::from([(labels::ROLE.to_string(), ROLE.to_string())]);
    Run::new().mark(&mut container_labels);
    let config = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: Some(WRITE_DEMO.iter().map(|s| s.to_string()).collect()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        labels: Some(container_labels),
        // Gone by itself once it exits, even if this process is not there
        // to remove it.
        host_config: Some(HostConfig {
            auto_remove: Some(true),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = engine
        .docker
        .create_container(Some(CreateContainerOptionsBuilder::new().build()), config)
        .await
        .with_context(|| format!("cannot create a container of {image} to get the demo from"))?;
    let attach = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .build();
    let attached = engine.docker.attach_container(&created.id, Some(attach)).await;
    let started = match attached {
        Ok(attached) => engine
            .docker
            .start_container(&created.id, None)
            .await
            .map(|()| attached)
            .context("cannot start the container that hands out the demo"),
        Err(e) => Err(e).context("cannot attach to the container that hands out the demo"),
    };
    let mut attached = match started {
        Ok(attached) => attached,
        Err(error) => {
            let _ = crate::node_container::remove(engine, &created.id).await;
            return Err(error);
        }
    };
    let (mut binary, mut said) = (Vec::new(), Vec::new());
    while let Some(chunk) = attached.output.next().await {
        match chunk.context("reading the demo from its container failed")? {
            LogOutput::StdOut { message } => binary.extend_from_slice(&message),
            LogOutput::StdErr { message } => said.extend_from_slice(&message),
            _ => {}
        }
    }
    if !binary.starts_with(b"\x7fELF") {
        let said = crate::error::one_line(String::from_utf8_lossy(&said).trim());
        let said = if said.is_empty() {
            "it wrote nothing".to_string()
        } else {
            said
        };
        return Err(Error::Prerequisite(format!(
            "the forwarder image {image} did not hand out the demo service ({said}): build swarmlab on Linux, or with the Linux target installed, to carry the demo itself"
        )));
    }
    Ok(binary)
}
