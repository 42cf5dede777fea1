//! What one manager reports of a swarm: nodes, services and tasks.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{Node, Service, TaskState};
use bollard::query_parameters::{ListServicesOptionsBuilder, ListTasksOptionsBuilder};

use crate::error::{Context, Result};

use super::{entry, hostname};

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
    /// When its state last changed, as its node or the manager reported.
    pub(crate) since: Option<std::time::SystemTime>,
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
        let options = ListServicesOptionsBuilder::new().status(true).build();
        let mut filters = HashMap::new();
        if !all_tasks {
            filters.insert("desired-state".to_string(), vec!["running".to_string()]);
        }
        let task_options = ListTasksOptionsBuilder::new().filters(&filters).build();
        // Asked together: at a hundred nodes and 300 tasks each answer takes
        // the busy manager a while, and a look a second waits on all three.
        let (nodes, services, tasks) = tokio::try_join!(
            async { manager.list_nodes(None).await.context("cannot list nodes") },
            async {
                manager
                    .list_services(Some(options))
                    .await
                    .context("cannot list services")
            },
            async {
                manager
                    .list_tasks(Some(task_options))
                    .await
                    .context("cannot list tasks")
            },
        )?;

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
                    since: status
                        .and_then(|s| s.timestamp.as_deref())
                        .and_then(crate::engine::engine_time),
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
