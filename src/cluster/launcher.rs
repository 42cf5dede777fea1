//! Bringing one node up: start its container, wait for its engine. Shared
//! by every operation that adds nodes to a cluster.
//!
//! Work on the host engine (creating and starting containers) is never
//! abandoned half-way: a cancelled operation stops between such steps, so
//! that a rollback afterwards finds everything that was made. Waiting is
//! abandoned at once.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};

use bollard::Docker;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::{self, HostEngine};
use crate::error::{Error, Result};
use crate::labels::Run;
use crate::node_container::{self, NodePlan, Security};
use crate::progress::Progress;
use crate::tls::ClusterTls;

/// How long an engine that says it listens may take to answer, where the
/// host engine is elsewhere (a local one, on a busy machine, may take the
/// whole --wait).
const REACH_LISTENING: std::time::Duration = std::time::Duration::from_secs(15);

/// The time an operation gives its nodes to come up, and how its user
/// gives it more.
pub(crate) struct Budget {
    deadline: Instant,
    given: std::time::Duration,
    more: &'static str,
}

impl Budget {
    /// `given` from `started`; `more` says how to give more (e.g. "give it
    /// longer with --wait").
    pub(crate) fn new(started: Instant, given: std::time::Duration, more: &'static str) -> Self {
        Budget {
            deadline: started + given,
            given,
            more,
        }
    }

    /// `given` by a node command's --timeout.
    pub(crate) fn timeout(started: Instant, given: std::time::Duration) -> Self {
        Self::new(started, given, "give it longer with --timeout")
    }
}

pub(crate) struct Launcher<'a> {
    pub(crate) engine: &'a HostEngine,
    pub(crate) tls: &'a ClusterTls,
    /// The nodes' TLS identity, handed to each on its standard input.
    pub(crate) identity: Vec<u8>,
    pub(crate) security: Security,
    pub(crate) progress: &'a dyn Progress,
    budget: Budget,
    pub(crate) cancel: CancellationToken,
    /// The operation's ID: what it makes carries it (see [`crate::labels::RUN`]).
    pub(crate) run: Run,
}

impl<'a> Launcher<'a> {
    pub(crate) async fn new(
        engine: &'a HostEngine,
        tls: &'a ClusterTls,
        progress: &'a dyn Progress,
        budget: Budget,
        cancel: CancellationToken,
        run: Run,
    ) -> Result<Self> {
        Ok(Launcher {
            engine,
            tls,
            identity: tls.node_bundle()?,
            security: Security::guess(&engine.facts().await?)?,
            progress,
            budget,
            cancel,
            run,
        })
    }

    /// When the operation's time is up.
    pub(crate) fn deadline(&self) -> Instant {
        self.budget.deadline
    }

    /// Creates and starts the node's container.
    pub(crate) async fn launch(&self, plan: &NodePlan) -> Result<()> {
        self.prepare(plan).await?;
        self.start(plan).await
    }

    /// Removes what this operation made of `cluster`: its rollback.
    pub(crate) async fn roll_back(&self, cluster: &crate::naming::ClusterName) -> Result<()> {
        super::remove_run(self.engine, cluster, &self.run).await.map(drop)
    }

    /// Creates the node's container without starting it.
    pub(crate) async fn prepare(&self, plan: &NodePlan) -> Result<()> {
        self.check()?;
        node_container::prepare(self.engine, plan, &self.security).await
    }

    /// Starts a prepared node container.
    pub(crate) async fn start(&self, plan: &NodePlan) -> Result<()> {
        self.check()?;
        self.progress.step(&plan.node.hostname(), "starting container");
        node_container::start(self.engine, plan, &self.security, &self.identity).await
    }

    /// Waits until the node's engine answers; returns a client for it.
    pub(crate) async fn wait_engine(&self, plan: &NodePlan) -> Result<Docker> {
        let host = plan.node.hostname();
        self.progress.step(&host, "waiting for its engine");
        let container = plan.container();
        let endpoint = if plan.publish_api {
            // No port is published while the container is not running (it
            // may be between restarts): ask again, and say why if it died.
            loop {
                match node_container::published_api_port(self.engine, &container).await {
                    Ok(port) => break SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    Err(error) => {
                        node_container::ensure_running(self.engine, &container, &host).await?;
                        if Instant::now() >= self.deadline() {
                            return Err(error);
                        }
                        self.unless_cancelled(async {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            Ok(())
                        })
                        .await?;
                    }
                }
            }
        } else {
            SocketAddr::from((plan.address, node_container::API_PORT_NUMBER))
        };
        let client = engine::node_client(endpoint, (!plan.insecure).then(|| self.tls.client_dir()))?;
        let listening = tokio::time::timeout_at(
            self.deadline(),
            node_container::wait_api_listening(self.engine, &container, &host),
        );
        match self.unless_cancelled(async { Ok(listening.await) }).await? {
            Ok(Ok(())) => {}
            Ok(Err(failed)) => return Err(failed),
            // Said as a timeout, not as the node failing: on a host too
            // busy to start an engine in time, more time is the cure. A
            // container that died or restarts meanwhile is a failure.
            Err(_) => {
                node_container::ensure_running(self.engine, &container, &host).await?;
                return Err(Error::Timeout {
                    what: format!("the engine of node {host} to listen"),
                    after: self.budget.given,
                    hint: format!("on a busy host, {}", self.budget.more),
                });
            }
        }
        // It listens: agreeing on a version is the first request, and the
        // polling below a fallback for engines that log differently. An
        // engine that listens but cannot be reached within seconds will not
        // be reached later either: where its published port does not come
        // to this machine's 127.0.0.1, say so now rather than at --wait.
        let alive = || node_container::ensure_running(self.engine, &container, &host);
        let local = self.engine.is_local().await?;
        let reachable_by = if local {
            self.deadline()
        } else {
            self.deadline().min(Instant::now() + REACH_LISTENING)
        };
        self.unless_cancelled(engine::wait_ping(client, reachable_by, alive))
            .await
            .map_err(|e| match e {
                Error::Other(reason) => Error::NodeFailed {
                    node: host.clone(),
                    reason: match (local, engine::tunnels::log_file(&self.engine.endpoint.host)) {
                        (true, _) => reason,
                        (false, Some(log)) => format!(
                            "{reason}; its engine listens, but swarmlab's ssh tunnel did not bring the port the host engine ({}) publishes for it to this machine's 127.0.0.1 ({}; see {})",
                            self.engine.endpoint.describe(),
                            engine::tunnels::last_trouble(&self.engine.endpoint.host)
                                .unwrap_or_else(|| "the tunnels said nothing".into()),
                            log.display()
                        ),
                        (false, None) => format!(
                            "{reason}; its engine listens, but the port the host engine ({}) publishes for it does not reach this machine's 127.0.0.1: use an engine on this machine, or one that forwards its published ports here (Docker Desktop does)",
                            self.engine.endpoint.describe()
                        ),
                    },
                },
                other => other,
            })
    }

    /// Fails once the operation is cancelled.
    pub(crate) fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Runs `work` unless the operation is cancelled first; for waiting only.
    pub(crate) async fn unless_cancelled<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            () = self.cancel.cancelled() => Err(Error::Interrupted),
            result = work => result,
        }
    }

    /// Runs the bring-up of several nodes side by side. The first failure
    /// cancels the others, which stop at their next step; it is the error
    /// returned (rather than the cancellations it caused).
    pub(crate) async fn all<T>(
        &self,
        work: impl IntoIterator<Item = impl Future<Output = Result<T>>>,
    ) -> Result<Vec<T>> {
        let guarded = work.into_iter().map(|future| async move {
            let result = future.await;
            if result.is_err() {
                self.cancel.cancel();
            }
            result
        });
        let results = futures_util::future::join_all(guarded).await;
        let mut interrupted = false;
        let mut values = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(value) => values.push(value),
                Err(Error::Interrupted) => interrupted = true,
                Err(error) => return Err(error),
            }
        }
        if interrupted {
            return Err(Error::Interrupted);
        }
        Ok(values)
    }
}
