//! What the docker CLI needs to talk to a cluster.

use crate::error::{Context, Result};

use super::{Cluster, NodeContainer};

/// What the docker CLI needs to talk to a cluster's leader.
#[derive(Debug, Clone)]
pub struct DockerEnv {
    pub docker_host: String,
    pub cert_path: std::path::PathBuf,
    /// The API answers without TLS (the cluster was made with --insecure).
    pub insecure: bool,
    /// The host engine swarmlab used, so that it keeps using it afterwards.
    pub host_engine: crate::engine::Endpoint,
}

impl Cluster {
    /// The container of the swarm's current leader.
    pub(crate) async fn leader(&self) -> Result<&NodeContainer> {
        let (asked, manager) = self.any_manager().await?;
        let listed = manager
            .list_nodes(None)
            .await
            .context("cannot list the swarm's nodes")?;
        let leader = listed
            .iter()
            .find(|n| n.manager_status.as_ref().and_then(|m| m.leader) == Some(true))
            .and_then(crate::swarm::hostname)
            .and_then(|host| self.container_of(host))
            .filter(|c| c.running && c.api_endpoint().is_some());
        Ok(leader.unwrap_or(asked))
    }

    pub async fn docker_env(&self) -> Result<DockerEnv> {
        let leader = self.leader().await?;
        // Managers publish their API on 127.0.0.1; a promoted worker is
        // reached at its own address.
        let endpoint = leader
            .api_endpoint()
            .ok_or_else(|| crate::error::Error::Other(format!("the engine of {} has no address", leader.name)))?;
        Ok(DockerEnv {
            docker_host: format!("tcp://{endpoint}"),
            cert_path: self.tls.client_dir().to_path_buf(),
            insecure: leader.insecure,
            host_engine: self.engine.endpoint.clone(),
        })
    }
}
