//! Swarm operations on node engines, all through the Engine API: init, join,
//! labels (here); reading a swarm's nodes, the one place that says which
//! entry counts for a hostname and what its state, role and standing are
//! (`nodes`); and what a manager knows of nodes, services and tasks at once
//! (`view`).

mod nodes;
mod view;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{LocalNodeState, SwarmInitRequest, SwarmJoinRequest, SwarmSpec, SwarmSpecDispatcher};
use tokio::time::Instant;

use crate::error::{Context, Error, Result};
use crate::naming::Role;

pub use nodes::{Availability, ManagerStatus, NodeStatus};
pub(crate) use nodes::{
    availability, engine_version, entries, entry, hostname, is_ready, manager_status, role, status, version_index,
};
pub(crate) use view::{SwarmView, TaskInfo};

const SWARM_PORT: u16 = 2377;

#[derive(Debug, Clone)]
pub(crate) struct JoinTokens {
    pub(crate) worker: String,
    pub(crate) manager: String,
}

impl JoinTokens {
    /// The token that joins a node as `role`.
    pub(crate) fn for_role(&self, role: Role) -> &str {
        match role {
            Role::Manager => &self.manager,
            Role::Worker => &self.worker,
        }
    }
}

/// Makes `docker` the first manager of a new swarm and hands `on_tokens` the
/// join tokens as soon as the manager tells them. They exist well before
/// the init request returns: that waits for the manager's own agent to
/// register, which Swarm sometimes starts half a second late; other nodes
/// can join meanwhile.
pub(crate) async fn init(
    docker: &Docker,
    address: Ipv4Addr,
    heartbeat: Option<Duration>,
    on_tokens: impl FnOnce(JoinTokens),
) -> Result<()> {
    let spec = heartbeat.map(|period| SwarmSpec {
        dispatcher: Some(SwarmSpecDispatcher {
            heartbeat_period: Some(period.as_nanos() as i64),
        }),
        ..Default::default()
    });
    let request = SwarmInitRequest {
        listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
        advertise_addr: Some(format!("{address}:{SWARM_PORT}")),
        spec,
        ..Default::default()
    };
    let init = docker.init_swarm(request);
    tokio::pin!(init);
    let early_tokens = async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(tokens) = join_tokens(docker).await {
                return tokens;
            }
        }
    };
    tokio::select! {
        result = &mut init => {
            result.context("swarm init failed")?;
            on_tokens(join_tokens(docker).await?);
            return Ok(());
        }
        tokens = early_tokens => on_tokens(tokens),
    }
    init.await.context("swarm init failed")?;
    Ok(())
}

pub(crate) async fn join_tokens(manager: &Docker) -> Result<JoinTokens> {
    let swarm = manager
        .inspect_swarm()
        .await
        .context("cannot read the swarm's join tokens")?;
    let tokens = swarm.join_tokens.unwrap_or_default();
    match (tokens.worker, tokens.manager) {
        (Some(worker), Some(manager)) => Ok(JoinTokens { worker, manager }),
        _ => Err(Error::Other("the manager returned no join tokens".into())),
    }
}

/// Makes a new swarm of the manager `docker` (at `address`) alone, keeping
/// the old swarm's services, networks and secrets: the way back when the
/// old one lost its quorum.
pub(crate) async fn force_new_cluster(docker: &Docker, address: Ipv4Addr) -> Result<()> {
    let request = SwarmInitRequest {
        listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
        advertise_addr: Some(format!("{address}:{SWARM_PORT}")),
        force_new_cluster: Some(true),
        ..Default::default()
    };
    docker
        .init_swarm(request)
        .await
        .map(|_| ())
        .context("swarm init --force-new-cluster failed")
}

/// Joins the engine `docker` (at `address`) to the swarm of the manager at
/// `manager`, by `deadline`.
///
/// A busy machine (a hundred nodes joining at once) makes the engine give
/// up waiting, not joining: it says the attempt goes on in the background.
/// That attempt is followed until the node is in the swarm, because when it
/// fails (its certificate request timed out on a manager starved of CPU)
/// Docker leaves the node in an "error" state for good, never trying again:
/// such a node leaves and joins once more.
pub(crate) async fn join(
    docker: &Docker,
    address: Ipv4Addr,
    manager: Ipv4Addr,
    token: &str,
    deadline: Instant,
) -> Result<()> {
    let request = SwarmJoinRequest {
        listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
        advertise_addr: Some(format!("{address}:{SWARM_PORT}")),
        remote_addrs: Some(vec![format!("{manager}:{SWARM_PORT}")]),
        join_token: Some(token.to_string()),
        ..Default::default()
    };
    loop {
        match docker.join_swarm(request.clone()).await {
            Err(e) if joins_in_background(&crate::error::engine_message(&e)) => {}
            other => return other.context("swarm join failed"),
        }
        tracing::debug!(%address, "swarm join goes on in the background");
        let failed = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let swarm = docker.info().await.ok().and_then(|info| info.swarm);
            let state = swarm.as_ref().and_then(|s| s.local_node_state);
            match state {
                Some(LocalNodeState::ACTIVE) => return Ok(()),
                Some(LocalNodeState::ERROR | LocalNodeState::INACTIVE) => {
                    break swarm.and_then(|s| s.error).unwrap_or_default();
                }
                _ if Instant::now() >= deadline => {
                    return Err(Error::Other(
                        "swarm join did not finish in time (it goes on in the background)".into(),
                    ));
                }
                _ => {}
            }
        };
        if Instant::now() >= deadline {
            return Err(Error::Other(format!("swarm join failed in the background: {failed}")));
        }
        tracing::debug!(%address, %failed, "swarm join failed in the background: joining again");
        let leave = bollard::query_parameters::LeaveSwarmOptionsBuilder::new()
            .force(true)
            .build();
        let _ = docker.leave_swarm(Some(leave)).await;
    }
}

/// Whether a join error is the engine's "Timeout was reached before node
/// joined. The attempt to join the swarm will continue in the background."
fn joins_in_background(message: &str) -> bool {
    message.contains("will continue in the background")
}

/// Waits until every host in `hostnames` is Ready in the manager's node list.
pub(crate) async fn wait_ready(
    manager: &Docker,
    hostnames: &BTreeSet<String>,
    deadline: Instant,
    total: Duration,
) -> Result<()> {
    loop {
        // A manager busy with many joins can miss its own deadline for a
        // listing: ask again until ours.
        let nodes = match manager.list_nodes(None).await {
            Err(e) if Instant::now() < deadline && crate::error::engine_message(&e).contains("DeadlineExceeded") => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            listed => listed.context("cannot list the swarm's nodes")?,
        };
        let ready: BTreeSet<String> = nodes
            .iter()
            .filter(|n| is_ready(n))
            .filter_map(|n| hostname(n).map(str::to_string))
            .collect();
        let missing: Vec<&str> = hostnames.difference(&ready).map(String::as_str).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            // Each by name, with what the swarm says of it: never joined, or
            // joined and not (or no longer) heard from.
            let said: Vec<String> = missing
                .iter()
                .map(|host| match entry(&nodes, host) {
                    Some(node) => format!("{host} ({})", status(node)),
                    None => format!("{host} (not in the swarm)"),
                })
                .collect();
            return Err(Error::Timeout {
                what: format!("nodes to be Ready in the swarm (still not: {})", said.join(", ")),
                after: total,
                hint: "raise --wait, or look at `docker logs` of the node containers".into(),
            });
        }
        // Each look lists every node on a manager that is busy with them
        // joining: a large cluster is looked at less often.
        tokio::time::sleep(Duration::from_millis(50) * (1 + hostnames.len() as u32 / 20)).await;
    }
}

/// Adds swarm labels to the node with `hostname` (for placement constraints).
pub(crate) async fn label_node(
    manager: &Docker,
    hostname: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let nodes = manager.list_nodes(None).await.context("cannot list nodes")?;
    let node = entry(&nodes, hostname).ok_or_else(|| Error::Other(format!("the swarm has no node {hostname}")))?;
    let mut spec = node.spec.clone().unwrap_or_default();
    spec.labels.get_or_insert_with(Default::default).extend(labels.clone());
    let version = version_index(node) as i64;
    let options = bollard::query_parameters::UpdateNodeOptionsBuilder::new()
        .version(version)
        .build();
    manager
        .update_node(node.id.as_deref().unwrap_or_default(), spec, options)
        .await
        .with_context(|| format!("cannot label node {hostname}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_by_role() {
        let tokens = JoinTokens {
            worker: "SWMTKN-w".into(),
            manager: "SWMTKN-m".into(),
        };
        assert_eq!(tokens.for_role(Role::Worker), "SWMTKN-w");
        assert_eq!(tokens.for_role(Role::Manager), "SWMTKN-m");
    }

    #[test]
    fn a_join_that_goes_on_in_the_background_is_not_a_failure() {
        assert!(joins_in_background(
            "Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the \"docker info\" command to see the current swarm status of your node."
        ));
        assert!(!joins_in_background("invalid join token"));
    }
}
