//! The quotes demo image: the one-file service in demo/quotes.rs, compiled
//! by rustc into a static binary and imported as a `FROM scratch` image.
//! Offline, no registry, no base image, a few seconds.

use std::process::Stdio;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::host::{TempDir, which};
use crate::host_images;
use crate::progress::Progress;

pub const DEMO_TAG: &str = "swarmlab/quotes:latest";
pub const DEMO_PORT: u16 = 8080;
const SOURCE: &str = include_str!("../demo/quotes.rs");

/// Builds the demo image as `tag`; returns its ID.
pub async fn build(engine: &HostEngine, tag: &str, progress: &dyn Progress) -> Result<String> {
    const STEP: &str = "quotes";
    let rustc = std::env::var_os("RUSTC")
        .map(std::path::PathBuf::from)
        .or_else(|| which("rustc"))
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| std::path::PathBuf::from(home).join(".cargo/bin/rustc"))
                .filter(|p| p.is_file())
        })
        .ok_or_else(|| {
            Error::Other("building the demo image needs rustc: install Rust (https://rustup.rs) and try again".into())
        })?;
    let dir = TempDir::new("swarmlab-quotes")?;
    let source = dir.path().join("quotes.rs");
    let binary = dir.path().join("quotes");
    std::fs::write(&source, SOURCE).context("cannot write the demo source")?;

    progress.step(STEP, "compiling a static binary");
    let output = tokio::process::Command::new(&rustc)
        .args(["--edition", "2024", "--crate-name", "quotes"])
        .args(["-C", "opt-level=3", "-C", "panic=abort", "-C", "strip=symbols"])
        .args(["-C", "target-feature=+crt-static"])
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .with_context(|| format!("cannot run {}", rustc.display()))?;
    if !output.status.success() {
        let errors = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Other(format!(
            "rustc could not build the demo service: {}",
            errors
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or("see rustc's output")
        )));
    }

    progress.step(STEP, &format!("importing as {tag}"));
    let contents = std::fs::read(&binary).context("cannot read the demo binary")?;
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    archive
        .append_data(&mut header, "quotes", contents.as_slice())
        .context("cannot build the image archive")?;
    let archive = archive.into_inner().context("cannot build the image archive")?;
    let changes = vec![
        "ENTRYPOINT [\"/quotes\"]".to_string(),
        format!("EXPOSE {DEMO_PORT}/tcp"),
        "LABEL io.swarmlab.demo=quotes".to_string(),
    ];
    let body = futures_util::stream::once(async move { Ok(bytes::Bytes::from(archive)) });
    let id = host_images::import_rootfs(engine, body, tag, changes).await?;
    progress.done(
        STEP,
        &format!(
            "built {tag} ({}, {} KiB)",
            host_images::short_id(&id),
            contents.len() / 1024
        ),
    );
    Ok(id)
}
