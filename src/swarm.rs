//! Swarm operations on node engines, all through the Engine API: init, join,
//! and reading what a manager knows (nodes, services, tasks).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    Node, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState, Reachability, Service, SwarmInitRequest,
    SwarmJoinRequest, SwarmSpec, SwarmSpecDispatcher, TaskState,
};
use bollard::query_parameters::{ListServicesOptionsBuilder, ListTasksOptionsBuilder};
use serde::Serialize;
use tokio::time::Instant;

use crate::error::{Context, Error, Result};
use crate::naming::Role;

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

/// Joins the engine `docker` (at `address`) to the swarm of the manager at `manager`.
pub(crate) async fn join(docker: &Docker, address: Ipv4Addr, manager: Ipv4Addr, token: &str) -> Result<()> {
    let request = SwarmJoinRequest {
        listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
        advertise_addr: Some(format!("{address}:{SWARM_PORT}")),
        remote_addrs: Some(vec![format!("{manager}:{SWARM_PORT}")]),
        join_token: Some(token.to_string()),
        ..Default::default()
    };
    docker.join_swarm(request).await.context("swarm join failed")
}

pub(crate) fn hostname(node: &Node) -> Option<&str> {
    node.description.as_ref()?.hostname.as_deref()
}

pub(crate) fn is_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
}

/// Every entry the swarm lists for `host`, the one that counts first: a
/// node recreated under the same name leaves stale entries behind, and the
/// Ready entry counts, else the newest.
pub(crate) fn entries<'a>(nodes: &'a [Node], host: &str) -> Vec<&'a Node> {
    let mut entries: Vec<&Node> = nodes.iter().filter(|n| hostname(n) == Some(host)).collect();
    entries.sort_by(|a, b| (is_ready(b), &b.created_at).cmp(&(is_ready(a), &a.created_at)));
    entries
}

/// The entry that counts for `host` (see [`entries`]).
pub(crate) fn entry<'a>(nodes: &'a [Node], host: &str) -> Option<&'a Node> {
    entries(nodes, host).into_iter().next()
}

/// A node's role in the swarm (promotion and demotion change it, not the
/// node's name).
pub(crate) fn role(node: &Node) -> Option<Role> {
    match node.spec.as_ref()?.role? {
        NodeSpecRoleEnum::MANAGER => Some(Role::Manager),
        _ => Some(Role::Worker),
    }
}

/// A node's state, as `docker node ls` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Ready,
    Down,
    Disconnected,
    Unknown,
    /// The swarm does not list the node.
    #[default]
    Absent,
}

/// A manager's standing in raft; empty (in JSON too) for workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerStatus {
    #[default]
    #[serde(rename = "")]
    NotManager,
    Leader,
    Reachable,
    Unreachable,
    /// A manager whose reachability the swarm does not say.
    Unknown,
}

/// Whether tasks may go to a node; empty (in JSON too) when not said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    #[default]
    #[serde(rename = "")]
    Unsaid,
    Active,
    Pause,
    Drain,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Ready => "ready",
            NodeStatus::Down => "down",
            NodeStatus::Disconnected => "disconnected",
            NodeStatus::Unknown => "unknown",
            NodeStatus::Absent => "absent",
        }
    }
}

impl ManagerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagerStatus::NotManager => "",
            ManagerStatus::Leader => "leader",
            ManagerStatus::Reachable => "reachable",
            ManagerStatus::Unreachable => "unreachable",
            ManagerStatus::Unknown => "unknown",
        }
    }
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Unsaid => "",
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }
}

macro_rules! displayed {
    ($($kind:ty),+) => {$(
        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

displayed!(NodeStatus, ManagerStatus, Availability);

pub(crate) fn status(node: &Node) -> NodeStatus {
    match node.status.as_ref().and_then(|s| s.state) {
        Some(NodeState::READY) => NodeStatus::Ready,
        Some(NodeState::DOWN) => NodeStatus::Down,
        Some(NodeState::DISCONNECTED) => NodeStatus::Disconnected,
        Some(NodeState::UNKNOWN) | None => NodeStatus::Unknown,
    }
}

pub(crate) fn manager_status(node: &Node) -> ManagerStatus {
    match node.manager_status.as_ref() {
        None => ManagerStatus::NotManager,
        Some(m) if m.leader == Some(true) => ManagerStatus::Leader,
        Some(m) => match m.reachability {
            Some(Reachability::REACHABLE) => ManagerStatus::Reachable,
            Some(Reachability::UNREACHABLE) => ManagerStatus::Unreachable,
            _ => ManagerStatus::Unknown,
        },
    }
}

pub(crate) fn availability(node: &Node) -> Availability {
    match node.spec.as_ref().and_then(|s| s.availability) {
        Some(NodeSpecAvailabilityEnum::ACTIVE) => Availability::Active,
        Some(NodeSpecAvailabilityEnum::PAUSE) => Availability::Pause,
        Some(NodeSpecAvailabilityEnum::DRAIN) => Availability::Drain,
        _ => Availability::Unsaid,
    }
}

/// The node's engine version, as the swarm heard it.
pub(crate) fn engine_version(node: &Node) -> String {
    node.description
        .as_ref()
        .and_then(|d| d.engine.as_ref())
        .and_then(|e| e.engine_version.clone())
        .unwrap_or_default()
}

/// Waits until every host in `hostnames` is Ready in the manager's node list.
pub(crate) async fn wait_ready(
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
    let version = node.version.as_ref().and_then(|v| v.index).unwrap_or_default() as i64;
    let options = bollard::query_parameters::UpdateNodeOptionsBuilder::new()
        .version(version)
        .build();
    manager
        .update_node(node.id.as_deref().unwrap_or_default(), spec, options)
        .await
        .with_context(|| format!("cannot label node {hostname}"))
}

/// A task, with the names a person knows it by.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskInfo {
    pub(crate) id: String,
    pub(crate) service_id: String,
    pub(crate) service: String,
    /// `service.slot` for replicated services, `service.node-id` for global ones.
    pub(crate) name: String,
    pub(crate) slot: Option<i64>,
    pub(crate) node_id: String,
    /// Empty when the task's node is no longer listed.
    pub(crate) hostname: String,
    pub(crate) container: String,
    pub(crate) image: String,
    pub(crate) state: Option<TaskState>,
    pub(crate) desired: Option<TaskState>,
}

impl TaskInfo {
    pub(crate) fn is_running(&self) -> bool {
        self.state == Some(TaskState::RUNNING)
    }
}

/// The swarm's nodes, services and tasks as one manager reports them.
#[derive(Debug, Clone, Default)]
pub(crate) struct SwarmView {
    pub(crate) nodes: Vec<Node>,
    pub(crate) services: Vec<Service>,
    pub(crate) tasks: Vec<TaskInfo>,
}

impl SwarmView {
    /// Reads the swarm from a manager: every task when `all_tasks`, else
    /// only the tasks meant to run.
    pub(crate) async fn read(manager: &Docker, all_tasks: bool) -> Result<Self> {
        let nodes = manager.list_nodes(None).await.context("cannot list nodes")?;
        let options = ListServicesOptionsBuilder::new().status(true).build();
        let services = manager
            .list_services(Some(options))
            .await
            .context("cannot list services")?;
        let mut filters = HashMap::new();
        if !all_tasks {
            filters.insert("desired-state".to_string(), vec!["running".to_string()]);
        }
        let tasks = manager
            .list_tasks(Some(ListTasksOptionsBuilder::new().filters(&filters).build()))
            .await
            .context("cannot list tasks")?;

        let service_names: HashMap<&str, &str> = services
            .iter()
            .filter_map(|s| Some((s.id.as_deref()?, s.spec.as_ref()?.name.as_deref()?)))
            .collect();
        let hostnames: HashMap<&str, &str> = nodes
            .iter()
            .filter_map(|n| Some((n.id.as_deref()?, hostname(n)?)))
            .collect();
        let tasks = tasks
            .into_iter()
            .map(|task| {
                let service_id = task.service_id.clone().unwrap_or_default();
                let service = service_names
                    .get(service_id.as_str())
                    .copied()
                    .unwrap_or_default()
                    .to_string();
                let node_id = task.node_id.clone().unwrap_or_default();
                let status = task.status.as_ref();
                TaskInfo {
                    id: task.id.clone().unwrap_or_default(),
                    name: match task.slot {
                        Some(slot) => format!("{service}.{slot}"),
                        None => format!("{service}.{node_id}"),
                    },
                    service,
                    service_id,
                    slot: task.slot,
                    hostname: hostnames.get(node_id.as_str()).copied().unwrap_or_default().to_string(),
                    node_id,
                    container: status
                        .and_then(|s| s.container_status.as_ref())
                        .and_then(|c| c.container_id.clone())
                        .unwrap_or_default(),
                    image: task
                        .spec
                        .as_ref()
                        .and_then(|s| s.container_spec.as_ref())
                        .and_then(|c| c.image.as_deref())
                        .map(|image| image.split('@').next().unwrap_or_default().to_string())
                        .unwrap_or_default(),
                    state: status.and_then(|s| s.state),
                    desired: task.desired_state,
                }
            })
            .collect();
        Ok(SwarmView { nodes, services, tasks })
    }

    pub(crate) fn service_name(service: &Service) -> &str {
        service
            .spec
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .unwrap_or_default()
    }

    /// The node entry that counts for a hostname (see [`entry`]).
    pub(crate) fn node(&self, host: &str) -> Option<&Node> {
        entry(&self.nodes, host)
    }
}
