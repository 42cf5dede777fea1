//! Creating a cluster, as kind does it: a plan (see `plan`), then ordered
//! actions that carry it out. Check; choose the node image and make the
//! network (claiming the name); make the TLS identity; bring every planned
//! node up in parallel (start its container, wait for its engine, init or
//! join the swarm) with the port forwarder; wait until the manager lists
//! them all Ready; label them; load the file's images. Whatever fails or is
//! interrupted is rolled back, only what this run made, unless the caller
//! keeps it.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::Docker;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::addressing;
use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::images;
use crate::labels::Run;
use crate::naming::{ClusterName, NodeName, Role};
use crate::node_container::{self, ClusterFacts, NodePlan};
use crate::node_image;
use crate::progress::Progress;
use crate::swarm::{self, JoinTokens};
use crate::tls::ClusterTls;

use crate::cluster::{self, Budget, Launcher, cluster_names};

use super::settle::{self, Settled};
use super::{CreateOptions, network, plan};

/// How long a create waits at most for a large cluster's gossip to settle
/// (see `settle`): 24-30 s at 1 + 100 with engine 28.5, five runs.
const SETTLE_AT_MOST: Duration = Duration::from_secs(30);

/// What `create` made.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: ClusterName,
    pub image: String,
    pub subnet: String,
    pub nodes: Vec<String>,
    pub security: &'static str,
    pub elapsed: Duration,
}

/// Creates a cluster. `interrupt` resolving (e.g. on Ctrl-C) stops the work
/// and rolls it back like a failure.
pub async fn create(
    engine: &HostEngine,
    options: &CreateOptions,
    progress: &dyn Progress,
    interrupt: impl Future<Output = ()>,
) -> Result<Created> {
    options.validate()?;
    if cluster_names(engine).await?.contains(&options.name) {
        return Err(Error::ClusterExists(options.name.to_string()));
    }
    let nodes = options.managers + options.workers;
    crate::host_room::ensure(engine, nodes, nodes, progress).await?;
    let cancel = CancellationToken::new();
    let run = Run::new();
    // Set once this run holds the name (its network won): from then on the
    // TLS folder of that name is this run's too.
    let claimed = AtomicBool::new(false);
    let work = bring_up(engine, options, progress, cancel.clone(), &run, &claimed);
    tokio::pin!(work);
    let outcome = tokio::select! {
        outcome = &mut work => outcome,
        () = interrupt => {
            // Let work on the host engine finish its current step, so that
            // the rollback finds everything.
            cancel.cancel();
            let _ = work.await;
            Err(Error::Interrupted)
        }
    };
    if outcome.is_err() {
        if options.retain {
            progress.note(&format!(
                "kept what was created (--retain); remove it with `swarmlab delete --name {}`",
                options.name
            ));
        } else {
            progress.note("rolling back: removing what was created");
            let mut cleanup = cluster::remove_run(engine, &options.name, &run).await.map(drop);
            if claimed.load(Ordering::SeqCst) {
                cleanup = cleanup.and(ClusterTls::remove_made(engine, &options.name).await);
            }
            if let Err(cleanup) = cleanup {
                progress.note(&format!("rollback incomplete: {cleanup}"));
            }
        }
    }
    outcome
}

async fn bring_up(
    engine: &HostEngine,
    options: &CreateOptions,
    progress: &dyn Progress,
    cancel: CancellationToken,
    run: &Run,
    claimed: &AtomicBool,
) -> Result<Created> {
    let started = Instant::now();
    let name = &options.name;
    // Both run to the end even when one fails: a network whose creation
    // was abandoned mid-request could outlive the rollback.
    let (images, network) = tokio::join!(
        node_image::resolve_images(
            engine,
            options.node_image.as_ref(),
            plan::own_choices(options),
            progress,
            &cancel,
        ),
        network::make(engine, options, run),
    );
    let (subnet, network_id) = network?;
    claimed.store(true, Ordering::SeqCst);
    let images = images?;
    let tls = ClusterTls::create(engine, name, &subnet).await?;
    let facts = ClusterFacts {
        cluster: name,
        images: &images,
        network_id: &network_id,
        subnet: &subnet,
        direct_api: engine.is_local().await? && node_container::bridge_is_here(&network_id),
        insecure: options.insecure,
        rootless: engine.facts().await?.nodes_rootless(),
        run,
        nodes: (options.managers + options.workers) as usize,
    };
    let plans = plan::node_plans(options, &facts);
    tracing::debug!(elapsed = ?started.elapsed(), "image, network and certificates ready");
    let launcher = Launcher::new(
        engine,
        &tls,
        progress,
        Budget::new(started, options.wait, "give it longer with --wait"),
        cancel,
        run.clone(),
    )
    .await?;

    let first_manager = NodeName::first_manager();
    let leader_address = addressing::node_address(&subnet, first_manager);
    let (tokens_tx, tokens_rx) = watch::channel::<Option<JoinTokens>>(None);
    // How many node containers have been started.
    let (launched_tx, launched_rx) = watch::channel(0usize);
    let manager_joins = Mutex::new(());
    let (first_start_sent, first_start_sent_rx) = watch::channel(false);
    // How many nodes' engines answer; see plan::joins_together.
    let (engines_up, engines_up_rx) = watch::channel(0usize);
    let (nodes, together) = (plans.len(), plan::joins_together(plans.len()));

    let bring_up_node = |plan: &NodePlan| {
        let plan = plan.clone();
        let (launcher, tokens_tx, mut tokens_rx, manager_joins) =
            (&launcher, &tokens_tx, tokens_rx.clone(), &manager_joins);
        let (launched_tx, first_start_sent, mut first_start_sent_rx) =
            (&launched_tx, &first_start_sent, first_start_sent_rx.clone());
        let (engines_up, mut engines_up_rx) = (&engines_up, engines_up_rx.clone());
        async move {
            let host = plan.node.hostname();
            // The first manager is the critical path (its engine, swarm init,
            // then every join waits on it): it is made alone (a few tens of
            // milliseconds) and its start goes to the host engine ahead of
            // the others.
            if plan.node == first_manager {
                launcher.prepare(&plan).await?;
                first_start_sent.send_replace(true);
            } else {
                launcher
                    .unless_cancelled(async {
                        let sent = first_start_sent_rx.wait_for(|sent| *sent).await;
                        sent.map(|_| ()).map_err(|_| Error::Interrupted)
                    })
                    .await?;
                launcher.prepare(&plan).await?;
            }
            launcher.start(&plan).await?;
            launched_tx.send_modify(|launched| *launched += 1);
            let docker = launcher.wait_engine(&plan).await?;
            engines_up.send_modify(|up| *up += 1);
            if together && plan.node != first_manager {
                launcher.progress.step(&host, "waiting for every node's engine");
                launcher
                    .unless_cancelled(async {
                        let all = engines_up_rx.wait_for(|up| *up == nodes).await;
                        all.map(drop).map_err(|_| Error::Interrupted)
                    })
                    .await?;
            }
            if plan.node == first_manager {
                launcher.progress.step(&host, "initializing the swarm");
                swarm::init(&docker, plan.address, options.heartbeat, |tokens| {
                    tokens_tx.send_replace(Some(tokens));
                })
                .await
                .map_err(|e| node_failed(&plan, e))?;
                return Ok(docker);
            }
            launcher.progress.step(&host, "waiting for the swarm");
            let tokens = launcher
                .unless_cancelled(async {
                    let tokens = tokens_rx.wait_for(Option::is_some).await;
                    tokens
                        .map(|t| t.clone().expect("waited for Some"))
                        .map_err(|_| Error::Other("the first manager never initialized the swarm".into()))
                })
                .await?;
            let _serialized = match plan.node.role {
                // Raft takes managers one at a time; joining them together can fail.
                Role::Manager => Some(manager_joins.lock().await),
                Role::Worker => None,
            };
            launcher.check()?;
            launcher.progress.step(&host, "joining the swarm");
            let token = tokens.for_role(plan.node.role);
            swarm::join(&docker, plan.address, leader_address, token, launcher.deadline())
                .await
                .map_err(|e| node_failed(&plan, e))?;
            Ok::<_, Error>(docker)
        }
    };
    // The port forwarder starts once the host engine has started every node
    // (so as not to hold them up there), while their engines boot; it
    // waits for the swarm by itself.
    let mut all_launched = launched_rx.clone();
    let forwarder = async {
        launcher
            .unless_cancelled(async { Ok(all_launched.wait_for(|launched| *launched == plans.len()).await.is_ok()) })
            .await?;
        crate::forwarder_container::ensure(engine, name, &tls, run).await
    };
    let (engines, forwarder) = tokio::join!(launcher.all(plans.iter().map(bring_up_node)), forwarder);
    let engines = engines?;
    // A forwarder this client cannot make costs the published ports on
    // localhost, not the cluster: said, not rolled back.
    match forwarder {
        Err(Error::Prerequisite(why)) => progress.note(&format!("warning: {why}")),
        other => other?,
    }

    let hostnames: BTreeSet<String> = plans.iter().map(|p| p.node.hostname()).collect();
    progress.note("waiting for every node to be Ready");
    let leader: &Docker = &engines[0];
    launcher
        .unless_cancelled(swarm::wait_ready(leader, &hostnames, launcher.deadline(), options.wait))
        .await?;
    for plan in plans.iter().filter(|p| !p.settings.labels.is_empty()) {
        launcher.check()?;
        swarm::label_node(leader, &plan.node.hostname(), &plan.settings.labels).await?;
    }
    for host in &hostnames {
        progress.done(host, "ready");
    }
    if !options.images.is_empty() {
        launcher.check()?;
        progress.note(&format!("loading {} into every node", options.images.join(", ")));
        let cluster = cluster::Cluster::open(engine, name).await?;
        let loads = images::load(&cluster, &options.images, None, progress).await?;
        if let Some(failed) = loads.iter().find(|l| l.outcome == images::LoadOutcome::Failed) {
            return Err(Error::NodeFailed {
                node: failed.node.clone(),
                reason: format!("loading images failed: {}", failed.detail),
            });
        }
    }
    if plan::waits_for_gossip(plans.len()) {
        launcher.check()?;
        let workers: Vec<String> = plans
            .iter()
            .filter(|p| p.node.role == Role::Worker)
            .map(NodePlan::container)
            .collect();
        progress.note("waiting for the nodes' gossip to settle");
        match launcher
            .unless_cancelled(async { Ok(settle::wait(engine, &workers, SETTLE_AT_MOST).await) })
            .await?
        {
            Settled::After(took) => progress.note(&format!("settled in {:.1}s", took.as_secs_f64())),
            Settled::StillBusy => progress.note(&format!(
                "the nodes still gossip after {}s; going on (they settle by themselves; engines before 28 take minutes at this size)",
                SETTLE_AT_MOST.as_secs()
            )),
            Settled::Unmeasured => {}
        }
    }
    Ok(Created {
        name: name.clone(),
        image: images.default.clone(),
        subnet: subnet.to_string(),
        nodes: hostnames.into_iter().collect(),
        security: launcher.security.describe(),
        elapsed: started.elapsed(),
    })
}

fn node_failed(plan: &NodePlan, error: Error) -> Error {
    Error::NodeFailed {
        node: plan.node.hostname(),
        reason: error.to_string(),
    }
}
