//! Images on the host engine: whether one is there, pulling one, importing
//! a root file system as one, and the parts of a reference. No registry is
//! needed for any of it but `pull`.

use std::collections::HashMap;

use bollard::query_parameters::{CreateImageOptionsBuilder, ListImagesOptionsBuilder};
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
    Ok(image.id.unwrap_or_default())
}

/// The IDs of the images carrying `label` (KEY or KEY=VALUE) that have a
/// name now: taken before a build that may move their names to the image
/// it makes, for [`remove_left_nameless`] once it has.
pub(crate) async fn named_with_label(engine: &HostEngine, label: &str) -> Vec<String> {
    let options = ListImagesOptionsBuilder::new()
        .filters(&HashMap::from([("label", vec![label])]))
        .build();
    let listed = engine.docker.list_images(Some(options)).await.unwrap_or_default();
    listed
        .into_iter()
        .filter(|image| has_name(&image.repo_tags))
        .map(|image| image.id)
        .collect()
}

/// Removes those of the images `before` (from [`named_with_label`]) that a
/// successful build has since left without a name: a rebuild should not
/// leave the image it replaced behind, dangling. Best effort, and only
/// after the build, so that a failed one leaves the old image: one a
/// container uses stays (the engine refuses).
pub(crate) async fn remove_left_nameless(engine: &HostEngine, before: &[String]) {
    for id in before {
        let nameless = match engine.docker.inspect_image(id).await {
            Ok(image) => !has_name(&image.repo_tags.unwrap_or_default()),
            Err(_) => false,
        };
        if nameless {
            let _ = engine
                .docker
                .remove_image(id, None::<bollard::query_parameters::RemoveImageOptions>, None)
                .await;
        }
    }
}

/// Whether an image's tags name it: engines list a nameless one with none,
/// or with "<none>:<none>".
fn has_name(tags: &[String]) -> bool {
    tags.iter().any(|tag| tag != "<none>:<none>")
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
    fn a_nameless_image_as_engines_list_it() {
        assert!(!has_name(&[]));
        assert!(!has_name(&["<none>:<none>".to_string()]));
        assert!(has_name(&["swarmlab/quotes:latest".to_string()]));
    }

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
