//! Images on the host engine: whether one is there, pulling one, importing
//! a root file system as one, and the parts of a reference. No registry is
//! needed for any of it but `pull`.

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::{StreamExt, TryStreamExt};

use crate::engine::HostEngine;
use crate::error::{Context, Result, engine_message, is_not_found};

/// Whether the host engine has `image`.
pub(crate) async fn is_present(engine: &HostEngine, image: &str) -> Result<bool> {
    match engine.docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot inspect image {image}")),
    }
}

/// Pulls `image`; the error is the engine's reason, for a message.
pub(crate) async fn pull(engine: &HostEngine, image: &str) -> Result<(), String> {
    let (name, tag) = split_reference(image);
    let options = CreateImageOptionsBuilder::new().from_image(name).tag(tag).build();
    engine
        .docker
        .create_image(Some(options), None, None)
        .try_for_each(|_| async { Ok(()) })
        .await
        .map_err(|e| engine_message(&e))
}

/// Pulls `image` unless the host engine has it; the error is the engine's
/// reason, for a message.
pub(crate) async fn present_or_pulled(engine: &HostEngine, image: &str) -> Result<(), String> {
    match is_present(engine, image).await {
        Ok(true) => Ok(()),
        Ok(false) => pull(engine, image).await,
        Err(e) => Err(e.to_string()),
    }
}

/// Imports a root file system archive as image `tag`, with Dockerfile-like
/// `changes` (ENTRYPOINT, LABEL...). Returns the image ID.
pub(crate) async fn import_rootfs(
    engine: &HostEngine,
    archive: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    tag: &str,
    changes: Vec<String>,
) -> Result<String> {
    let replaced = engine.docker.inspect_image(tag).await.ok().and_then(|image| image.id);
    let (repo, version) = split_reference(tag);
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .changes(changes)
        .build();
    let body = bollard::body_try_stream(archive);
    let mut stream = engine.docker.create_image(Some(options), Some(body), None).boxed();
    while let Some(item) = stream.next().await {
        item.with_context(|| format!("importing image {tag} failed"))?;
    }
    let image = engine
        .docker
        .inspect_image(tag)
        .await
        .with_context(|| format!("the imported image {tag} cannot be found"))?;
    let id = image.id.unwrap_or_default();
    if let Some(old) = replaced.filter(|old| *old != id) {
        remove_if_orphaned(engine, &old).await;
    }
    Ok(id)
}

/// Removes image `id` if the import of its tag left it nameless and it is
/// swarmlab's (one of its labels): a rebuild should not leave the image it
/// replaced behind as a dangling one. One a container still uses stays
/// (the engine refuses), as does one someone has tagged since.
async fn remove_if_orphaned(engine: &HostEngine, id: &str) {
    let Ok(image) = engine.docker.inspect_image(id).await else {
        return;
    };
    let nameless = image.repo_tags.as_ref().is_none_or(|tags| tags.is_empty());
    let swarmlabs = image
        .config
        .and_then(|config| config.labels)
        .is_some_and(|labels| labels.keys().any(|key| key.starts_with("io.swarmlab.")));
    if nameless && swarmlabs {
        let _ = engine
            .docker
            .remove_image(id, None::<bollard::query_parameters::RemoveImageOptions>, None)
            .await;
    }
}

/// A root file system archive of executable files, each `(path, contents)`:
/// what the demo and forwarder images are made of.
pub(crate) fn executables_archive<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<bytes::Bytes> {
    let mut archive = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        archive
            .append_data(&mut header, path.trim_start_matches('/'), contents)
            .with_context(|| format!("cannot add {path} to the image archive"))?;
    }
    let archive = archive.into_inner().context("cannot build the image archive")?;
    Ok(bytes::Bytes::from(archive))
}

/// Splits `repo:tag` (the repository may hold a registry port) into its parts.
pub(crate) fn split_reference(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// The first 12 hex digits of an image ID, as `docker images` shows them.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(split_reference("docker:dind"), ("docker", "dind"));
        assert_eq!(split_reference("swarmlab/node"), ("swarmlab/node", "latest"));
        assert_eq!(
            split_reference("localhost:5000/node"),
            ("localhost:5000/node", "latest")
        );
        assert_eq!(split_reference("localhost:5000/node:v1"), ("localhost:5000/node", "v1"));
    }

    #[test]
    fn short_ids() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id(""), "");
    }
}
