//! Swarm operations on node engines, all through the Engine API: init, join,
//! and reading the manager's node list.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{Node, NodeState, SwarmInitRequest, SwarmJoinRequest, SwarmSpec, SwarmSpecDispatcher};
use tokio::time::Instant;

use crate::error::{Context, Error, Result};

const SWARM_PORT: u16 = 2377;

#[derive(Debug, Clone)]
pub struct JoinTokens {
    pub worker: String,
    pub manager: String,
}

/// Makes `docker` the first manager of a new swarm.
pub async fn init(docker: &Docker, address: Ipv4Addr, heartbeat: Option<Duration>) -> Result<JoinTokens> {
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
    docker.init_swarm(request).await.context("swarm init failed")?;
    join_tokens(docker).await
}

pub async fn join_tokens(manager: &Docker) -> Result<JoinTokens> {
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

/// Joins the engine `docker` (at `address`) to the swarm of the manager at `manager`.
pub async fn join(docker: &Docker, address: Ipv4Addr, manager: Ipv4Addr, token: &str) -> Result<()> {
    let request = SwarmJoinRequest {
        listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
        advertise_addr: Some(format!("{address}:{SWARM_PORT}")),
        remote_addrs: Some(vec![format!("{manager}:{SWARM_PORT}")]),
        join_token: Some(token.to_string()),
        ..Default::default()
    };
    docker.join_swarm(request).await.context("swarm join failed")
}

pub fn hostname(node: &Node) -> Option<&str> {
    node.description.as_ref()?.hostname.as_deref()
}

pub fn is_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
}

/// Waits until every host in `hostnames` is Ready in the manager's node list.
pub async fn wait_ready(
    manager: &Docker,
    hostnames: &BTreeSet<String>,
    deadline: Instant,
    total: Duration,
) -> Result<()> {
    loop {
        let nodes = manager
            .list_nodes(None)
            .await
            .context("cannot list the swarm's nodes")?;
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
            return Err(Error::Timeout {
                what: format!("nodes to be Ready in the swarm (still not: {})", missing.join(", ")),
                after: total,
                hint: "raise --wait, or look at `docker logs` of the node containers".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
