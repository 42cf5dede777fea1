//! Renewing a stopped cluster's certificates: a new CA and identities,
//! made beside the old ones; every node's container made anew on its volume
//! (the same swarm node) so that it takes its new identity on standard
//! input when it starts, whatever swarmlab made it; the forwarder's
//! container removed (`start` makes it anew). The new material takes the
//! old one's place only once every container is ready for it: a renewal
//! stopped half-way leaves the cluster as it was.

use std::time::SystemTime;

use crate::cluster::Cluster;
use crate::engine::HostEngine;
use crate::error::Result;
use crate::labels::Run;
use crate::naming::ClusterName;
use crate::node_container;
use crate::progress::Progress;
use crate::tls::ClusterTls;

/// Renews when the certificates are near their end, or were made by a
/// swarmlab that kept the CA key and handed keys over in the environment.
/// Returns whether it renewed.
pub(super) async fn if_due(engine: &HostEngine, name: &ClusterName, progress: &dyn Progress) -> Result<bool> {
    let tls = ClusterTls::open(engine, name).await?;
    if !tls.needs_renewal(SystemTime::now()) {
        return Ok(false);
    }
    let cluster = Cluster::open(engine, name).await?;
    if cluster.nodes.iter().any(|n| n.running) {
        progress.note(
            "the cluster's TLS certificates are due for renewal: `swarmlab stop`, then `swarmlab start`, renews them",
        );
        return Ok(false);
    }
    let subnet = crate::cluster::subnet(engine, name).await?;
    let renewal = tls.stage_renewal(engine, name, &subnet).await?;
    let run = Run::new();
    for node in &cluster.nodes {
        progress.step(&node.node.hostname(), "made anew for its new identity");
        let plan = cluster.plan(node.node, &run).await?;
        node_container::recreate(engine, &plan).await?;
    }
    engine
        .remove_container(&crate::forwarder_container::container_name(name))
        .await?;
    renewal.commit()?;
    progress.note(
        "renewed the cluster's TLS certificates: a new CA, good for a year; the nodes' API ports change (not one fixed with --api-port): run `eval \"$(swarmlab env)\"` again",
    );
    Ok(true)
}
