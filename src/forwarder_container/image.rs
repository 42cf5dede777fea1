//! The forwarder's image: the one `SWARMLAB_PORTS_IMAGE` names (pulled
//! when missing); else the static Linux forwarder this binary carries, when
//! it was built with one (`SWARMLAB_FORWARDER_BINARY`, see build.rs: how a
//! macOS or Windows client gets one); else, on a Linux client, this very
//! binary and the shared libraries it links. Each is imported as a root
//! file system. Without any of them, published ports are not forwarded, and
//! `create` says so instead of failing.

#[cfg(linux_client)]
use std::hash::{Hash, Hasher};
#[cfg(linux_client)]
use std::path::Path;
#[cfg(any(linux_client, test))]
use std::path::PathBuf;

use std::collections::HashMap;

use crate::engine::HostEngine;
#[cfg(linux_client)]
use crate::error::Context;
use crate::error::{Error, Result};
use crate::host_images;

use super::BINARY;

/// Names a forwarder image to use (pulled if the engine lacks it), before
/// any other: for clients that carry none, and for engines of another
/// architecture.
pub(crate) const PORTS_IMAGE_VAR: &str = "SWARMLAB_PORTS_IMAGE";

/// The static Linux forwarder build.rs put in this binary; empty if none.
const CARRIED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/forwarder"));
/// What tells one carried forwarder from another (build.rs hashes it).
const CARRIED_ID: &str = env!("SWARMLAB_FORWARDER_ID");
/// The machine it runs on, as `docker info` names it.
const CARRIED_ARCH: &str = env!("SWARMLAB_FORWARDER_ARCH");

const IMAGE_REPO: &str = "swarmlab/ports";
/// Marks forwarder images, whatever their tag.
const PORTS_IMAGE_LABEL: &str = "io.swarmlab.ports=1";

/// The forwarder's image, on the engine.
pub(super) async fn ensure(engine: &HostEngine) -> Result<String> {
    match std::env::var(PORTS_IMAGE_VAR) {
        Ok(image) if !image.is_empty() => named(engine, &image).await,
        _ if !CARRIED.is_empty() => carried(engine).await,
        _ => own(engine).await,
    }
}

/// The image the user named, pulled when the engine lacks it.
async fn named(engine: &HostEngine, image: &str) -> Result<String> {
    host_images::present_or_pulled(engine, image).await.map_err(|why| {
        Error::Prerequisite(format!(
            "the forwarder image {image} ({PORTS_IMAGE_VAR}) is not on the engine and cannot be pulled ({why}): published ports are not forwarded until it is there"
        ))
    })?;
    Ok(image.to_string())
}

/// The image of the forwarder this binary carries, imported when missing.
async fn carried(engine: &HostEngine) -> Result<String> {
    // On another machine it would only crash again and again.
    let architecture = engine.facts().await?.architecture;
    if architecture != CARRIED_ARCH {
        let architecture = if architecture.is_empty() {
            "another machine"
        } else {
            architecture
        };
        return Err(Error::Prerequisite(format!(
            "the forwarder this swarmlab carries is for {CARRIED_ARCH}, the engine runs on {architecture}: build swarmlab with a forwarder for the engine's machine (SWARMLAB_FORWARDER_BINARY), or name one in {PORTS_IMAGE_VAR}"
        )));
    }
    let tag = format!("{IMAGE_REPO}:static-{CARRIED_ID}");
    if !host_images::is_present(engine, &tag).await? {
        import(engine, &tag, [(BINARY, CARRIED)]).await?;
    }
    Ok(tag)
}

#[cfg(not(linux_client))]
async fn own(_engine: &HostEngine) -> Result<String> {
    Err(Error::Prerequisite(format!(
        "published ports reach localhost through a forwarder, which this swarmlab for {} does not carry (build it with SWARMLAB_FORWARDER_BINARY, see the README); name a swarmlab forwarder image for this engine in {PORTS_IMAGE_VAR}, or reach the services through the cluster's engine (`eval \"$(swarmlab env)\"`, then docker)",
        std::env::consts::OS
    )))
}

/// The forwarder image of this swarmlab binary, built when missing. Its tag
/// follows the binary, so that a rebuilt swarmlab gets a new forwarder.
#[cfg(linux_client)]
async fn own(engine: &HostEngine) -> Result<String> {
    let binary = std::env::current_exe().context("cannot locate the swarmlab binary")?;
    let metadata = std::fs::metadata(&binary).context("cannot read the swarmlab binary")?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (env!("CARGO_PKG_VERSION"), metadata.len(), metadata.modified().ok()).hash(&mut hasher);
    let tag = format!("{IMAGE_REPO}:{:016x}", hasher.finish());
    if host_images::is_present(engine, &tag).await? {
        return Ok(tag);
    }
    // Symbolic links (the libraries') are followed: the files are read.
    let mut files = vec![(BINARY.to_string(), read(&binary)?)];
    for library in shared_libraries(&binary).await? {
        files.push((library.to_string_lossy().into_owned(), read(&library)?));
    }
    import(
        engine,
        &tag,
        files
            .iter()
            .map(|(path, contents)| (path.as_str(), contents.as_slice())),
    )
    .await?;
    Ok(tag)
}

/// Imports `files` as the forwarder image `tag`, and removes the forwarder
/// images of other swarmlab builds.
async fn import<'a>(
    engine: &HostEngine,
    tag: &str,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<()> {
    let archive = host_images::executables_archive(files)?;
    let body = futures_util::stream::once(async move { Ok(archive) });
    let changes = vec![
        format!("ENTRYPOINT [\"{BINARY}\"]"),
        format!("LABEL {PORTS_IMAGE_LABEL}"),
    ];
    host_images::import_rootfs(engine, body, tag, changes).await?;
    remove_stale_images(engine, tag).await;
    Ok(())
}

/// Removes the forwarder images of earlier swarmlab builds that no container
/// uses any more (the engine refuses to remove the others), so that
/// rebuilding swarmlab does not pile them up. Best effort: a failure here
/// costs disk space, not the forwarder.
async fn remove_stale_images(engine: &HostEngine, current: &str) {
    let options = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .filters(&HashMap::from([("label", vec![PORTS_IMAGE_LABEL])]))
        .build();
    let Ok(listed) = engine.docker.list_images(Some(options)).await else {
        return;
    };
    for image in listed {
        if image.repo_tags.iter().any(|tag| tag == current) {
            continue;
        }
        let _ = engine
            .docker
            .remove_image(&image.id, None::<bollard::query_parameters::RemoveImageOptions>, None)
            .await;
    }
}

#[cfg(linux_client)]
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The shared libraries the binary needs, as `ldd` resolves them.
#[cfg(linux_client)]
async fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let output = tokio::process::Command::new("ldd")
        .arg(binary)
        .output()
        .await
        .context("cannot run ldd to find the libraries swarmlab needs")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if text.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        return Err(Error::Prerequisite(format!(
            "ldd failed on {}: the forwarder's image is made of this binary and its libraries",
            binary.display()
        )));
    }
    Ok(parse_ldd(&text))
}

#[cfg(any(linux_client, test))]
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, resolved)) => resolved.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let paths: Vec<String> = parse_ldd(text).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }
}
