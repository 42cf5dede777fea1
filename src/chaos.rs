//! Breaking workloads on purpose: killing task containers behind the
//! swarm's back, as the blog does with `docker rm -f` on a node.

use std::collections::BTreeSet;
use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::convergence::Observer;
use crate::error::{Context, Error, Result, is_not_found};
use crate::progress::Progress;
use crate::swarm::{SwarmView, TaskInfo};

/// Which running tasks to kill; every field narrows the choice.
#[derive(Debug, Clone, Default)]
pub struct TaskSelection {
    pub service: Option<String>,
    pub node: Option<String>,
    pub count: Option<u32>,
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
    let swarm = SwarmView::read(&manager, false).await?;
    if let Some(wanted) = &selection.service
        && !swarm.services.iter().any(|s| SwarmView::service_name(s) == wanted)
    {
        return Err(Error::invalid(format!(
            "no service named {wanted:?}: `docker service ls` lists them"
        )));
    }
    let mut chosen: Vec<&TaskInfo> = swarm
        .tasks
        .iter()
        .filter(|t| t.is_running() && !t.container.is_empty())
        .filter(|t| selection.service.as_ref().is_none_or(|s| *s == t.service))
        .filter(|t| selection.node.as_ref().is_none_or(|n| *n == t.hostname))
        .collect();
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(count) = selection.count {
        chosen.truncate(count as usize);
    }
    if chosen.is_empty() {
        return Err(Error::invalid("no running task matches: check --service and --node"));
    }

    let mut observer = Observer::new(&cluster.engine, &cluster.name);
    let started = Instant::now();
    let mut killed = Vec::new();
    for task in &chosen {
        let docker = cluster.node_engine(cluster.node(&task.hostname)?)?;
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match docker.remove_container(&task.container, Some(options)).await {
            Err(e) if !is_not_found(&e) => {
                return Err(e)
                    .with_context(|| format!("cannot remove the container of {} on {}", task.name, task.hostname));
            }
            _ => {}
        }
        progress.step(&task.hostname, &format!("killed {}", task.name));
        killed.push(KilledTask {
            task: task.name.clone(),
            node: task.hostname.clone(),
        });
    }
    let gone: BTreeSet<String> = chosen.iter().map(|t| t.id.clone()).collect();
    observer
        .until(timeout, "the killed tasks to be replaced", |state| {
            state.converged() && state.services.iter().all(|s| s.task_ids.is_disjoint(&gone))
        })
        .await?;
    let replaced_after = started.elapsed();
    progress.note(&format!("all replaced after {:.1}s", replaced_after.as_secs_f64()));
    Ok(KillReport { killed, replaced_after })
}
