//! The quotes demo image: the one-file service in demo/quotes.rs, compiled
//! into a static Linux binary when swarmlab is built (build.rs) and imported
//! as a `FROM scratch` image. Offline, no registry, no base image, no
//! compiler at run time. A swarmlab built where the demo could not be
//! compiled for Linux (macOS, Windows) gets it from the forwarder's image,
//! a Linux swarmlab that carries it.

use std::borrow::Cow;

use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::host_images;
use crate::progress::Progress;

pub const DEMO_TAG: &str = "swarmlab/quotes:latest";
pub(crate) const DEMO_PORT: u16 = 8080;
/// On the demo image: tells swarmlab's builds of it from other images.
const DEMO_LABEL: &str = "io.swarmlab.demo=quotes";

/// The demo service, compiled for Linux by build.rs when swarmlab was built.
const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/quotes"));

/// Builds the demo image as `tag`; returns its ID.
pub async fn build(engine: &HostEngine, tag: &str, progress: &dyn Progress) -> Result<String> {
    const STEP: &str = "quotes";
    let contents = if BINARY.is_empty() {
        progress.step(STEP, "getting it from the forwarder's image");
        Cow::Owned(crate::forwarder_container::demo_binary(engine).await?)
    } else {
        Cow::Borrowed(BINARY)
    };
    progress.step(STEP, &format!("importing as {tag}"));
    let archive = host_images::executables_archive([("quotes", &contents[..])])?;
    let changes = vec![
        "ENTRYPOINT [\"/quotes\"]".to_string(),
        format!("EXPOSE {DEMO_PORT}/tcp"),
        format!("LABEL {DEMO_LABEL}"),
    ];
    let body = futures_util::stream::once(async move { Ok(archive) });
    let before = host_images::named_with_label(engine, DEMO_LABEL).await;
    let id = host_images::import_rootfs(engine, body, tag, changes).await?;
    host_images::remove_left_nameless(engine, &before).await;
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

/// Writes the demo service this swarmlab carries to `out`: how a forwarder
/// container hands it to a client that carries none.
pub fn write_carried(out: &mut impl std::io::Write) -> Result<()> {
    if BINARY.is_empty() {
        return Err(Error::Prerequisite(
            "this swarmlab was built without the Linux demo service".into(),
        ));
    }
    out.write_all(BINARY)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Other(format!("cannot write the demo service: {e}")))
}
