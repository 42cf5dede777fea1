//! The image node containers run: choosing one (by image or by engine
//! version), listing swarmlab's own, and building them from Debian's
//! packages without any registry.

use std::collections::HashMap;

use bollard::query_parameters::ListImagesOptionsBuilder;
use tokio_util::sync::CancellationToken;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::host_images::{is_present, pull};
use crate::progress::Progress;

mod build;
mod in_container;
mod recipe;
mod releases;

pub(crate) use crate::node_choice::Images;
pub use crate::node_choice::{Choice, EngineVersion};
pub use build::{Built, build};
pub use recipe::{BuildOptions, Builder};

pub(crate) const REPOSITORY: &str = "swarmlab/node";
pub const DEFAULT_TAG: &str = "swarmlab/node:latest";
pub(crate) const IMAGE_ENV: &str = "SWARMLAB_NODE_IMAGE";
/// Marks swarmlab's node images.
pub(crate) const IMAGE_LABEL: &str = "io.swarmlab.node-image";
/// The engine version a node image's dockerd said when it was built.
pub(crate) const ENGINE_LABEL: &str = "io.swarmlab.engine";
const OFFICIAL_DIND: &str = "docker:dind";

/// Finds (pulls or builds where needed) the image of `default` and of
/// each of `others`.
pub(crate) async fn resolve_images(
    engine: &HostEngine,
    default: Option<&Choice>,
    others: impl IntoIterator<Item = Choice>,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<Images> {
    let mut images = Images::single(&resolve_choice(engine, default, progress, cancel).await?);
    for choice in others {
        if Some(&choice) != default && !images.chosen.contains_key(&choice) {
            let image = resolve_choice(engine, Some(&choice), progress, cancel).await?;
            images.chosen.insert(choice, image);
        }
    }
    let all: Vec<String> = std::iter::once(images.default.clone())
        .chain(images.chosen.values().cloned())
        .collect();
    for image in all {
        images.set_engine(&image, engine_of(engine, &image).await);
    }
    Ok(images)
}

/// The engine version a swarmlab node image says it runs; None for other
/// images, or when it cannot be inspected.
pub(crate) async fn engine_of(engine: &HostEngine, image: &str) -> Option<EngineVersion> {
    let inspected = engine.docker.inspect_image(image).await.ok()?;
    let version = inspected.config?.labels?.remove(ENGINE_LABEL)?;
    EngineVersion::parse(&version).ok()
}

/// Picks the image for `choice`; None picks the default (see [`resolve`]).
/// `cancel` stops a build that an engine version needs.
pub(crate) async fn resolve_choice(
    engine: &HostEngine,
    choice: Option<&Choice>,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<String> {
    match choice {
        None => resolve(engine, None, progress).await,
        Some(Choice::Image(image)) => resolve(engine, Some(image), progress).await,
        Some(Choice::Engine(version)) => for_engine(engine, version, progress, cancel).await,
    }
}

/// The newest local swarmlab node image whose engine meets `version`;
/// built when there is none (here, or in a container on the engine).
async fn for_engine(
    engine: &HostEngine,
    version: &EngineVersion,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<String> {
    let local = list(engine).await?;
    let best = local
        .iter()
        .filter(|image| image.engine.as_ref().is_some_and(|e| version.is_met_by(e)))
        .max_by(|a, b| a.engine.cmp(&b.engine));
    if let Some(image) = best {
        return Ok(image.reference().to_string());
    }
    releases::release_for(Some(version))?;
    progress.note(&format!(
        "no node image with engine {version} yet: building one (about a minute)"
    ));
    let options = BuildOptions {
        engine: Some(version.clone()),
        ..Default::default()
    };
    match build(engine, &options, progress, cancel).await {
        Ok(mut built) => Ok(built.tags.remove(0)),
        Err(e @ (Error::Prerequisite(_) | Error::Other(_))) => Err(Error::NodeImageMissing(format!(
            "no node image with engine {version} on the host engine, and building one failed: {e}. Or pass a node image of your own with --image"
        ))),
        Err(e) => Err(e),
    }
}

/// A swarmlab node image on the host engine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeImage {
    pub id: String,
    pub tags: Vec<String>,
    /// None for images built before swarmlab recorded it.
    pub engine: Option<EngineVersion>,
    pub size: i64,
    /// Seconds since the epoch.
    pub created: i64,
}

impl NodeImage {
    /// How to name it: its first tag, else its ID.
    pub fn reference(&self) -> &str {
        self.tags.first().map(String::as_str).unwrap_or(&self.id)
    }
}

/// swarmlab's node images on the host engine (and images made from them),
/// newest engine first.
pub async fn list(engine: &HostEngine) -> Result<Vec<NodeImage>> {
    let options = ListImagesOptionsBuilder::new()
        .filters(&HashMap::from([("label", vec![IMAGE_LABEL])]))
        .build();
    let listed = engine
        .docker
        .list_images(Some(options))
        .await
        .context("cannot list the node images")?;
    let mut images: Vec<NodeImage> = listed
        .into_iter()
        .map(|image| {
            let mut tags: Vec<String> = image.repo_tags.into_iter().filter(|t| t != "<none>:<none>").collect();
            tags.sort();
            NodeImage {
                engine: image
                    .labels
                    .get(ENGINE_LABEL)
                    .and_then(|v| EngineVersion::parse(v).ok()),
                id: image.id,
                tags,
                size: image.size,
                created: image.created,
            }
        })
        // Untagged ones are leftovers of earlier builds.
        .filter(|image: &NodeImage| !image.tags.is_empty())
        .collect();
    images.sort_by(|a, b| b.engine.cmp(&a.engine).then(b.created.cmp(&a.created)));
    Ok(images)
}

/// Picks the node image: `explicit` (--image) > SWARMLAB_NODE_IMAGE >
/// swarmlab/node:latest when present > docker:dind, pulled.
pub(crate) async fn resolve(engine: &HostEngine, explicit: Option<&str>, progress: &dyn Progress) -> Result<String> {
    let chosen = explicit
        .map(str::to_string)
        .or_else(|| std::env::var(IMAGE_ENV).ok().filter(|s| !s.is_empty()));
    if let Some(image) = chosen {
        if is_present(engine, &image).await? {
            return Ok(image);
        }
        progress.note(&format!("node image {image} is not on the host engine; pulling it"));
        return match pull(engine, &image).await {
            Ok(()) => Ok(image),
            Err(reason) => Err(Error::NodeImageMissing(format!(
                "node image {image} is not on the host engine and could not be pulled ({reason}): build swarmlab's own with `swarmlab node-image build` or choose another --image"
            ))),
        };
    }
    if is_present(engine, DEFAULT_TAG).await? {
        return Ok(DEFAULT_TAG.to_string());
    }
    progress.note(&format!("{DEFAULT_TAG} is not built; pulling {OFFICIAL_DIND} instead"));
    match pull(engine, OFFICIAL_DIND).await {
        Ok(()) => Ok(OFFICIAL_DIND.to_string()),
        Err(reason) => Err(Error::NodeImageMissing(format!(
            "no node image: {DEFAULT_TAG} is not built and {OFFICIAL_DIND} could not be pulled ({reason}); build one offline with `swarmlab node-image build`, or make {OFFICIAL_DIND} pullable"
        ))),
    }
}
