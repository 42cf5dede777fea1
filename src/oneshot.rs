//! Short-lived containers on the host engine that do a piece of work next
//! to it and hand the result out on their standard output (the demo's
//! binary, a node image's root file system). The client then needs neither
//! Linux nor the engine's machine: only the engine's API.
//!
//! Each one removes itself when it exits (`docker run --rm`); one whose
//! work is no longer wanted (an error, Ctrl-C) is removed at once with
//! [`OneShot::abandon`], or soon after when it is dropped unfinished (the
//! work that held it was cancelled). A client killed outright leaves it to
//! run to its end and then go; one created but never started is removed by
//! a later run of its kind.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::engine::HostEngine;
use crate::error::{Context, Result, is_not_found};
use crate::labels;

type Output = Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;
type Removal = JoinHandle<Option<std::result::Result<bollard::models::ContainerWaitResponse, bollard::errors::Error>>>;

/// A started one-shot container: its output as it comes, then its exit code.
pub(crate) struct OneShot {
    engine: HostEngine,
    id: String,
    /// What it does, for messages ("the node image builder").
    what: String,
    output: Output,
    /// Taken by the first wait for it.
    removed: Option<Removal>,
}

impl OneShot {
    /// Creates and starts a container of `config` labelled `role` (it
    /// belongs to no cluster), attached to its stdout and stderr from the
    /// first byte. `what` names it in messages.
    pub(crate) async fn start(
        engine: &HostEngine,
        role: &str,
        what: &str,
        mut config: ContainerCreateBody,
    ) -> Result<Self> {
        remove_stale(engine, role).await;
        config
            .labels
            .get_or_insert_with(HashMap::new)
            .insert(labels::ROLE.to_string(), role.to_string());
        let host = config.host_config.get_or_insert_with(HostConfig::default);
        host.auto_remove = Some(true);
        // What it hands out is read through the attach alone: kept in a log
        // as well, a node image's root file system would be written to the
        // engine's disk a second time, as JSON.
        host.log_config = Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        });
        let image = config.image.clone().unwrap_or_default();
        let created = engine
            .docker
            .create_container(Some(CreateContainerOptionsBuilder::new().build()), config)
            .await
            .with_context(|| format!("cannot create {what} (a container of {image})"))?;
        match attach_and_start(engine, &created.id, what).await {
            Ok((output, removed)) => Ok(OneShot {
                engine: engine.clone(),
                id: created.id,
                what: what.to_string(),
                output,
                removed: Some(removed),
            }),
            Err(e) => {
                let _ = engine.remove_container(&created.id).await;
                Err(e)
            }
        }
    }

    /// The next piece of its output; None once it has closed both.
    pub(crate) async fn next(&mut self) -> Option<Result<LogOutput>> {
        let what = &self.what;
        self.output
            .next()
            .await
            .map(|chunk| chunk.with_context(|| format!("reading the output of {what} failed")))
    }

    /// Its exit code once the engine has removed it (as `docker run --rm`
    /// waits); None when it was gone before the wait reached the engine
    /// (or was asked already).
    pub(crate) async fn exit_code(&mut self) -> Result<Option<i64>> {
        let Some(removed) = self.removed.take() else {
            return Ok(None);
        };
        match removed.await {
            Ok(Some(Ok(response))) => Ok(Some(response.status_code)),
            // bollard reports a non-zero exit code as an error of its own.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => Ok(Some(code)),
            Ok(Some(Err(e))) if is_not_found(&e) => Ok(None),
            Ok(Some(Err(e))) => Err(e).with_context(|| format!("waiting for {} failed", self.what)),
            Ok(None) | Err(_) => Ok(None),
        }
    }

    /// Stops and removes it, done or not (its work is not wanted), and
    /// waits until it is gone: an auto-removal under way makes the forced
    /// removal return at once. Harmless when it is gone already.
    pub(crate) async fn abandon(&mut self) {
        // Closed first: the engine does not remove a container whose
        // output it is still trying to hand to a reader that has stopped.
        self.output = Box::pin(futures_util::stream::empty());
        let _ = self.engine.remove_container(&self.id).await;
        if let Some(removed) = self.removed.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), removed).await;
        }
    }
}

impl Drop for OneShot {
    /// Unfinished (neither waited for nor abandoned): removed in the
    /// background, once its output is closed (the fields go after this).
    fn drop(&mut self) {
        if self.removed.take().is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (engine, id) = (self.engine.clone(), self.id.clone());
            runtime.spawn(async move {
                let _ = engine.remove_container(&id).await;
            });
        }
    }
}

async fn attach_and_start(engine: &HostEngine, id: &str, what: &str) -> Result<(Output, Removal)> {
    let attach = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .build();
    let attached = engine
        .docker
        .attach_container(id, Some(attach))
        .await
        .with_context(|| format!("cannot attach to {what}"))?;
    // Sent before the start, so that the removal most likely comes after.
    let (docker, container) = (engine.docker.clone(), id.to_string());
    let removed = tokio::spawn(async move {
        let options = WaitContainerOptionsBuilder::new().condition("removed").build();
        docker.wait_container(&container, Some(options)).next().await
    });
    tokio::task::yield_now().await;
    engine
        .docker
        .start_container(id, None)
        .await
        .with_context(|| format!("cannot start {what}"))?;
    Ok((attached.output, removed))
}

/// How long another run's container may be seen created but not started:
/// a run starts its own within a second of creating it.
const STARTED_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Removes containers of `role` that an interrupted run left (created,
/// never started, so never removed by themselves), not one that a run
/// going on beside this one has just created: only those still created a
/// moment later. (Not by their creation time: the engine's clock, and the
/// time zone it states it in, need not be this machine's.) Best effort.
async fn remove_stale(engine: &HostEngine, role: &str) {
    let created = || async {
        let label = format!("{}={role}", labels::ROLE);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&HashMap::from([
                ("label", vec![label.as_str()]),
                ("status", vec!["created"]),
            ]))
            .build();
        let listed = engine.docker.list_containers(Some(options)).await.unwrap_or_default();
        listed.into_iter().filter_map(|c| c.id).collect::<Vec<_>>()
    };
    let first = created().await;
    if first.is_empty() {
        return;
    }
    tokio::time::sleep(STARTED_WITHIN).await;
    for id in created().await.into_iter().filter(|id| first.contains(id)) {
        let _ = engine.remove_container(&id).await;
    }
}
