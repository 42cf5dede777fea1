//! The quotes demo image: the one-file service in demo/quotes.rs, compiled
//! into a static Linux binary when swarmlab is built (build.rs) and imported
//! as a `FROM scratch` image. Offline, no registry, no base image, no
//! compiler at run time.

use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::host_images;
use crate::progress::Progress;

pub const DEMO_TAG: &str = "swarmlab/quotes:latest";
pub(crate) const DEMO_PORT: u16 = 8080;

/// The demo service, compiled for Linux by build.rs when swarmlab was built.
const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/quotes"));

/// Builds the demo image as `tag`; returns its ID.
pub async fn build(engine: &HostEngine, tag: &str, progress: &dyn Progress) -> Result<String> {
    const STEP: &str = "quotes";
    if BINARY.is_empty() {
        return Err(Error::Prerequisite(
            "this swarmlab was built without the demo service (its Linux standard library was missing at build time): build swarmlab on Linux, or with the Linux target installed (rustup target add x86_64-unknown-linux-gnu)".into(),
        ));
    }
    progress.step(STEP, &format!("importing as {tag}"));
    let contents = BINARY;
    let archive = host_images::executables_archive([("quotes", contents)])?;
    let changes = vec![
        "ENTRYPOINT [\"/quotes\"]".to_string(),
        format!("EXPOSE {DEMO_PORT}/tcp"),
        "LABEL io.swarmlab.demo=quotes".to_string(),
    ];
    let body = futures_util::stream::once(async move { Ok(archive) });
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
