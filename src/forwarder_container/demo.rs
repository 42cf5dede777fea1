//! The demo service's binary for a client that carries none (one built on
//! macOS or Windows, where the demo could not be compiled for Linux): the
//! forwarder's image is a Linux swarmlab, which does carry it, and a
//! short-lived container of that image writes it out.

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};

use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::oneshot::OneShot;

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
    let config = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: Some(WRITE_DEMO.iter().map(|s| s.to_string()).collect()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            memory: Some(super::FORWARDER_MEMORY),
            pids_limit: Some(super::FORWARDER_PIDS),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut container = OneShot::start(engine, ROLE, "the container that hands out the demo", config).await?;
    let (mut binary, mut said) = (Vec::new(), Vec::new());
    while let Some(chunk) = container.next().await {
        match chunk {
            Ok(LogOutput::StdOut { message }) => binary.extend_from_slice(&message),
            Ok(LogOutput::StdErr { message }) => said.extend_from_slice(&message),
            Ok(_) => {}
            Err(e) => {
                container.abandon().await;
                return Err(e);
            }
        }
    }
    let status = container.exit_code().await?;
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
