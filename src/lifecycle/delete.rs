//! Deleting a cluster: everything that carries its label goes, then its TLS
//! material.

use futures_util::future::try_join_all;

use crate::cluster::{Deleted, cluster_names, remove_labelled};
use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::labels;
use crate::naming::ClusterName;
use crate::tls::ClusterTls;

/// Deletes one cluster; fails when nothing of it exists.
pub async fn delete(engine: &HostEngine, name: &ClusterName) -> Result<Deleted> {
    if !cluster_names(engine).await?.contains(name) {
        return Err(Error::ClusterNotFound(name.to_string()));
    }
    remove_everything(engine, name).await
}

/// Deletes every cluster.
pub async fn delete_all(engine: &HostEngine) -> Result<Vec<(ClusterName, Deleted)>> {
    let names = cluster_names(engine).await?;
    let deletions = names.iter().map(|name| async move {
        let deleted = remove_everything(engine, name).await?;
        Ok::<_, Error>((name.clone(), deleted))
    });
    try_join_all(deletions).await
}

/// Removes whatever carries the cluster's label, missing pieces included,
/// and its TLS material.
pub(crate) async fn remove_everything(engine: &HostEngine, name: &ClusterName) -> Result<Deleted> {
    let deleted = remove_labelled(engine, &labels::filter(Some(name))).await?;
    ClusterTls::remove(engine, name).await?;
    crate::context::remove(name);
    Ok(deleted)
}
