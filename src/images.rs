//! Images into nodes, without a registry: export once from a source engine,
//! load into every node that lacks the image, all nodes in parallel.

use bollard::Docker;
use bollard::query_parameters::{ImportImageOptionsBuilder, ListImagesOptionsBuilder};
use futures_util::TryStreamExt;
use futures_util::future::join_all;
use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::{Cluster, NodeContainer};
use crate::error::{Context, Error, Result, engine_message, is_not_found};
use crate::progress::Progress;

/// What a load did on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadOutcome {
    Loaded,
    /// The node held the same image IDs already.
    Present,
    Failed,
}

impl LoadOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadOutcome::Loaded => "loaded",
            LoadOutcome::Present => "present",
            LoadOutcome::Failed => "failed",
        }
    }
}

/// What happened on one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLoad {
    pub node: String,
    pub outcome: LoadOutcome,
    pub detail: String,
    pub seconds: f64,
}

/// An image as the source engine knows it.
#[derive(Debug, Clone)]
struct SourceImage {
    reference: String,
    id: String,
}

/// Loads `images` from the host engine into the cluster's running nodes
/// (all, or those named in `only`).
pub async fn load(
    cluster: &Cluster,
    images: &[String],
    only: Option<&[String]>,
    progress: &dyn Progress,
) -> Result<Vec<NodeLoad>> {
    let mut sources = Vec::new();
    for reference in images {
        let inspected = cluster.engine.docker.inspect_image(reference).await.map_err(|e| {
            if is_not_found(&e) {
                Error::invalid(format!(
                    "image {reference} is not on the host engine: build or pull it there first (`docker images` lists what it has)"
                ))
            } else {
                Error::Engine {
                    context: format!("cannot inspect image {reference}"),
                    source: e,
                }
            }
        })?;
        sources.push(SourceImage {
            reference: reference.clone(),
            id: inspected.id.unwrap_or_default(),
        });
    }
    let targets = target_nodes(cluster, only)?;
    let engines: Vec<(&NodeContainer, Docker)> = targets
        .into_iter()
        .map(|node| Ok((node, cluster.node_engine(node)?)))
        .collect::<Result<_>>()?;
    transfer(&cluster.engine.docker, &sources, &engines, progress).await
}

fn target_nodes<'a>(cluster: &'a Cluster, only: Option<&[String]>) -> Result<Vec<&'a NodeContainer>> {
    let Some(names) = only else {
        return Ok(cluster.nodes.iter().filter(|n| n.running).collect());
    };
    names
        .iter()
        .map(|name| {
            let node = cluster.node(name)?;
            if !node.running {
                return Err(Error::invalid(format!("node {name} is {}: start it first", node.state)));
            }
            Ok(node)
        })
        .collect()
}

/// Copies every tagged image that any of `peers` holds, and `node` lacks,
/// into `node`: nodes added to a cluster get the images the others were given.
pub(crate) async fn sync_from_peers(
    cluster: &Cluster,
    peers: &[&NodeContainer],
    node: &NodeContainer,
    progress: &dyn Progress,
) -> Result<Option<NodeLoad>> {
    let target = cluster.node_engine(node)?;
    let held = tagged_images(&target).await?;
    for peer in peers {
        let Ok(source) = cluster.node_engine(peer) else {
            continue;
        };
        let Ok(offered) = tagged_images(&source).await else {
            continue;
        };
        let missing: Vec<SourceImage> = offered
            .into_iter()
            .filter(|image| !held.iter().any(|h| h.id == image.id))
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let mut loads = transfer(&source, &missing, &[(node, target.clone())], progress).await?;
        return Ok(loads.pop());
    }
    Ok(None)
}

async fn tagged_images(docker: &Docker) -> Result<Vec<SourceImage>> {
    let images = docker
        .list_images(Some(ListImagesOptionsBuilder::new().build()))
        .await
        .context("cannot list a node's images")?;
    Ok(images
        .into_iter()
        .filter_map(|image| {
            let tag = image.repo_tags.into_iter().find(|t| t != "<none>:<none>")?;
            Some(SourceImage {
                reference: tag,
                id: image.id,
            })
        })
        .collect())
}

async fn transfer(
    source: &Docker,
    images: &[SourceImage],
    targets: &[(&NodeContainer, Docker)],
    progress: &dyn Progress,
) -> Result<Vec<NodeLoad>> {
    // Which nodes already hold every image (same IDs)?
    let holdings = join_all(targets.iter().map(|(node, docker)| async move {
        let host = node.node.hostname();
        progress.step(&host, "checking images");
        let mut present = true;
        for image in images {
            // By reference, so that the tag the user asked for is there too.
            match docker.inspect_image(&image.reference).await {
                Ok(found) if found.id.as_deref() == Some(image.id.as_str()) => {}
                Ok(_) => present = false,
                Err(e) if is_not_found(&e) => present = false,
                Err(e) => return Err(e).with_context(|| format!("cannot inspect images on {host}")),
            }
        }
        Ok::<_, Error>(present)
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<bool>>>()?;

    let started = Instant::now();
    let needed = holdings.iter().any(|present| !present);
    let archive = if needed {
        let names: Vec<&str> = images.iter().map(|i| i.reference.as_str()).collect();
        let chunks: Vec<bytes::Bytes> = source
            .export_images(&names)
            .try_collect()
            .await
            .context("cannot export the images")?;
        Some(bytes::Bytes::from(chunks.concat()))
    } else {
        None
    };
    let exported = started.elapsed();

    let loads = targets.iter().zip(&holdings).map(|((node, docker), present)| {
        let archive = archive.clone();
        async move {
            let host = node.node.hostname();
            if *present {
                progress.done(&host, "images already present");
                return NodeLoad {
                    node: host,
                    outcome: LoadOutcome::Present,
                    detail: String::new(),
                    seconds: 0.0,
                };
            }
            progress.step(&host, "loading images");
            let body = bollard::body_full(archive.expect("exported when needed"));
            let options = ImportImageOptionsBuilder::new().quiet(true).build();
            let result: std::result::Result<Vec<_>, _> = docker.import_image(options, body, None).try_collect().await;
            let seconds = started.elapsed().as_secs_f64();
            match result {
                Ok(_) => {
                    progress.done(&host, &format!("loaded in {:.1}s", seconds));
                    NodeLoad {
                        node: host,
                        outcome: LoadOutcome::Loaded,
                        detail: format!("export {:.2}s", exported.as_secs_f64()),
                        seconds,
                    }
                }
                Err(e) => {
                    let message = engine_message(&e);
                    progress.done(&host, &format!("failed: {message}"));
                    NodeLoad {
                        node: host,
                        outcome: LoadOutcome::Failed,
                        detail: message,
                        seconds,
                    }
                }
            }
        }
    });
    Ok(join_all(loads).await)
}
