//! A manager client that outlives one look at a cluster.

use bollard::Docker;

use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::naming::ClusterName;

use super::Cluster;

/// How long one read of the swarm may take: ample for a hundred nodes.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A manager client kept between looks at a cluster, and picked again when
/// it stops answering (the manager may be the node that went away).
pub(crate) struct ManagerLink {
    engine: HostEngine,
    name: ClusterName,
    client: Option<Docker>,
}

impl ManagerLink {
    pub(crate) fn new(engine: &HostEngine, name: &ClusterName) -> Self {
        ManagerLink {
            engine: engine.clone(),
            name: name.clone(),
            client: None,
        }
    }

    /// Reads the swarm (see [`crate::swarm::SwarmView::read`]).
    pub(crate) async fn read(&mut self, all_tasks: bool) -> Result<crate::swarm::SwarmView> {
        let manager = match &self.client {
            Some(client) => client.clone(),
            None => {
                let cluster = Cluster::open(&self.engine, &self.name).await?;
                let (_, manager) = cluster.manager_at_a_glance("").await?;
                self.client = Some(manager.clone());
                manager
            }
        };
        // A manager killed while it was being asked never answers on the kept
        // connection; the client's own timeout is for long work, not this.
        let view = tokio::time::timeout(READ_TIMEOUT, crate::swarm::SwarmView::read(&manager, all_tasks))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Other(format!(
                    "the manager did not answer within {}s",
                    READ_TIMEOUT.as_secs()
                )))
            });
        if view.is_err() {
            self.client = None;
        }
        view
    }
}
