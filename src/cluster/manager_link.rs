//! A manager client that outlives one look at a cluster.

use bollard::Docker;

use crate::engine::HostEngine;
use crate::error::Result;
use crate::naming::ClusterName;

use super::Cluster;

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
                let (_, manager) = cluster.any_manager().await?;
                self.client = Some(manager.clone());
                manager
            }
        };
        let view = crate::swarm::SwarmView::read(&manager, all_tasks).await;
        if view.is_err() {
            self.client = None;
        }
        view
    }
}
