//! Breaking workloads on purpose: killing task containers behind the
//! swarm's back, as the blog does with `docker rm -f` on a node.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bollard::models::TaskState;
use bollard::query_parameters::{ListTasksOptionsBuilder, RemoveContainerOptionsBuilder};
use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::convergence::Observer;
use crate::error::{Context, Error, Result, is_not_found};
use crate::progress::Progress;
use crate::swarm;

/// Which running tasks to kill; every field narrows the choice.
#[derive(Debug, Clone, Default)]
pub struct TaskSelection {
    pub service: Option<String>,
    pub node: Option<String>,
    pub count: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KilledTask {
    pub task: String,
    pub node: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    pub killed: Vec<KilledTask>,
    /// From the kill until every service ran its replicas again.
    pub replaced_after: Duration,
}

/// Removes the chosen task containers with force, then waits until the
/// swarm has replaced them.
pub async fn kill_tasks(
    cluster: &Cluster,
    selection: &TaskSelection,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<KillReport> {
    if let Some(node) = &selection.node {
        cluster.node(node)?;
    }
    let (_, manager) = cluster.any_manager().await?;
    let services = manager.list_services(None).await.context("cannot list services")?;
    let service_names: HashMap<String, String> = services
        .iter()
        .filter_map(|s| Some((s.id.clone()?, s.spec.as_ref()?.name.clone()?)))
        .collect();
    if let Some(wanted) = &selection.service
        && !service_names.values().any(|name| name == wanted)
    {
        return Err(Error::invalid(format!(
            "no service named {wanted:?}: `docker service ls` lists them"
        )));
    }
    let nodes = manager.list_nodes(None).await.context("cannot list nodes")?;
    let hostname_of: HashMap<String, String> = nodes
        .iter()
        .filter_map(|n| Some((n.id.clone()?, swarm::hostname(n)?.to_string())))
        .collect();
    let filters = HashMap::from([("desired-state".to_string(), vec!["running".to_string()])]);
    let tasks = manager
        .list_tasks(Some(ListTasksOptionsBuilder::new().filters(&filters).build()))
        .await
        .context("cannot list tasks")?;

    let mut chosen = Vec::new();
    for task in &tasks {
        let status = task.status.as_ref();
        if status.and_then(|s| s.state) != Some(TaskState::RUNNING) {
            continue;
        }
        let service = task
            .service_id
            .as_ref()
            .and_then(|id| service_names.get(id))
            .cloned()
            .unwrap_or_default();
        let host = task
            .node_id
            .as_ref()
            .and_then(|id| hostname_of.get(id))
            .cloned()
            .unwrap_or_default();
        if selection.service.as_ref().is_some_and(|s| *s != service)
            || selection.node.as_ref().is_some_and(|n| *n != host)
        {
            continue;
        }
        let Some(container_id) = status
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.clone())
        else {
            continue;
        };
        let name = match task.slot {
            Some(slot) => format!("{service}.{slot}"),
            None => format!("{service}.{}", task.node_id.clone().unwrap_or_default()),
        };
        chosen.push((task.id.clone().unwrap_or_default(), name, host, container_id));
    }
    chosen.sort_by(|a, b| a.1.cmp(&b.1));
    if let Some(count) = selection.count {
        chosen.truncate(count);
    }
    if chosen.is_empty() {
        return Err(Error::invalid("no running task matches: check --service and --node"));
    }

    let mut observer = Observer::new(&cluster.engine, &cluster.name);
    let started = Instant::now();
    let mut killed = Vec::new();
    for (_, name, host, container_id) in &chosen {
        let node = cluster.node(host)?;
        let docker = cluster.node_engine(node)?;
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match docker.remove_container(container_id, Some(options)).await {
            Err(e) if !is_not_found(&e) => {
                return Err(e).with_context(|| format!("cannot remove the container of {name} on {host}"));
            }
            _ => {}
        }
        progress.step(host, &format!("killed {name}"));
        killed.push(KilledTask {
            task: name.clone(),
            node: host.clone(),
        });
    }
    let gone: BTreeSet<String> = chosen.iter().map(|c| c.0.clone()).collect();
    observer
        .until(timeout, "the killed tasks to be replaced", |state| {
            state.converged() && state.services.iter().all(|s| s.task_ids.is_disjoint(&gone))
        })
        .await?;
    let replaced_after = started.elapsed();
    progress.note(&format!("all replaced after {:.1}s", replaced_after.as_secs_f64()));
    Ok(KillReport { killed, replaced_after })
}
