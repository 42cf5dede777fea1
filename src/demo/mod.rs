//! The seed scenario end to end, narrated and timed: create, deploy,
//! request, scale, kill tasks, crash a worker, recreate it, rebalance,
//! delete.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::chaos::{self, TaskSelection};
use crate::cluster::Cluster;
use crate::convergence::Observer;
use crate::demo_image::{self, DEMO_TAG};
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::host_images;
use crate::images;
use crate::lifecycle::{self, CreateOptions};
use crate::nodes;
use crate::progress::Progress;
use crate::rebalance;
use crate::traffic::{self, Summary, TrafficOptions};

mod options;
mod service;
pub use options::DemoOptions;
use service::{get_quote, service_spec, wait_for_answer};

const SERVICE: &str = "quotes-service";

/// One measured stage.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub stage: String,
    pub seconds: f64,
    pub detail: String,
    /// What the stage cost the service's users, for the stages that break
    /// something while requests flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficCost>,
}

/// Requests sent while a failure played out, and what it cost them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrafficCost {
    pub requests: u64,
    pub failed: u64,
    /// The longest time without an answer, seconds.
    pub longest_gap: f64,
}

impl From<&Summary> for TrafficCost {
    fn from(summary: &Summary) -> Self {
        TrafficCost {
            requests: summary.requests,
            failed: summary.failed,
            longest_gap: (summary.longest_gap * 100.0).round() / 100.0,
        }
    }
}

/// Requests a second sent through each failure.
const TRAFFIC_RATE: u32 = 20;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoReport {
    pub cluster: String,
    pub timings: Vec<Timing>,
    /// Requests per replica (its ipAddress) among the requests after scaling.
    pub spread: BTreeMap<String, u32>,
}

impl DemoReport {
    fn record(&mut self, stage: &str, took: Duration, detail: impl Into<String>) {
        self.timings.push(Timing {
            stage: stage.to_string(),
            seconds: (took.as_secs_f64() * 100.0).round() / 100.0,
            detail: detail.into(),
            traffic: None,
        });
    }

    fn with_traffic(&mut self, summary: &Summary) {
        if let Some(last) = self.timings.last_mut() {
            last.traffic = Some(summary.into());
        }
    }
}

/// Runs `work` while requests go to the demo service at [`TRAFFIC_RATE`]
/// a second; they stop when it ends.
async fn under_traffic<T>(port: u16, work: impl Future<Output = T>) -> (T, Summary) {
    let options = TrafficOptions {
        port,
        path: "/api/quote".into(),
        rate: TRAFFIC_RATE,
        duration: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let doing = async {
        let result = work.await;
        let _ = stop.send(());
        result
    };
    let sending = traffic::run(
        &options,
        async {
            let _ = stopped.await;
        },
        |_| {},
    );
    tokio::join!(doing, sending)
}

/// "3 of 240 requests failed, longest gap 1.2s", for the narration.
fn cost_text(summary: &Summary) -> String {
    format!(
        "{} of {} requests failed, longest gap without an answer {:.1}s",
        summary.failed, summary.requests, summary.longest_gap
    )
}

/// Runs the scenario on a cluster of its own: a name that exists already is
/// refused and left alone. The cluster this run made is deleted at the end
/// (also when a later step fails) unless `keep`. `cancel` stops it: a
/// create under way is rolled back, a made cluster deleted unless `keep`.
pub async fn run(
    engine: &HostEngine,
    options: &DemoOptions,
    say: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<DemoReport> {
    options.check()?;
    if crate::cluster::cluster_names(engine).await?.contains(&options.name) {
        return Err(Error::ClusterExists(options.name.to_string()));
    }
    let mut report = DemoReport {
        cluster: options.name.to_string(),
        ..Default::default()
    };
    let mut made = false;
    let outcome = scenario(engine, options, say, &mut report, &mut made, cancel).await;
    if !made {
        // create failed and rolled back what it made, or another run took
        // the name first: nothing here is this run's to delete.
    } else if options.keep {
        say.note(&format!(
            "The cluster stays (--keep): `swarmlab delete --name {}` removes it.",
            options.name
        ));
    } else {
        say.note("Tearing everything down: every container, volume and network of the cluster goes.");
        match lifecycle::delete(engine, &options.name).await {
            Ok(deleted) => report.record("delete", deleted.elapsed, format!("{} containers", deleted.containers)),
            // What stopped the scenario comes first (an interruption is 130).
            Err(e) if outcome.is_err() => say.note(&format!("warning: deleting the cluster failed: {e}")),
            Err(e) => return Err(e),
        }
    }
    outcome.map(|()| report)
}

async fn scenario(
    engine: &HostEngine,
    options: &DemoOptions,
    say: &dyn Progress,
    report: &mut DemoReport,
    made: &mut bool,
    cancel: &CancellationToken,
) -> Result<()> {
    say.note(&format!(
        "1. Create a cluster: 1 manager and {} workers, each a container running its own Docker engine (heartbeat {}).",
        options.workers,
        humantime::format_duration(options.heartbeat)
    ));
    let mut create = CreateOptions::new(options.name.clone());
    create.workers = options.workers;
    create.heartbeat = Some(options.heartbeat);
    create.wait = options.timeout;
    create.node_image = options.engine.clone().map(crate::node_image::Choice::Engine);
    let created = lifecycle::create(engine, &create, say, cancel.cancelled()).await?;
    *made = true;
    report.record(
        "create",
        created.elapsed,
        format!("1 manager + {} workers", options.workers),
    );
    // Dropped mid-step when stopped: the cluster goes whole afterwards.
    tokio::select! {
        done = lab(engine, options, say, report) => done,
        () = cancel.cancelled() => Err(Error::Interrupted),
    }
}

/// The scenario on the created cluster.
async fn lab(engine: &HostEngine, options: &DemoOptions, say: &dyn Progress, report: &mut DemoReport) -> Result<()> {
    let cluster = Cluster::open(engine, &options.name).await?;
    say.note(&format!(
        "2. Put the quotes demo image into every node ({DEMO_TAG}, built here if missing)."
    ));
    if !host_images::is_present(engine, DEMO_TAG).await? {
        demo_image::build(engine, DEMO_TAG, say).await?;
    }
    images::load(&cluster, &[DEMO_TAG.to_string()], None, say).await?;

    say.note(&format!(
        "3. Deploy {SERVICE}, published with -p {port}:8080, and ask it for a quote on localhost:{port}.",
        port = options.port
    ));
    let (_, manager) = cluster.any_manager().await?;
    let started = Instant::now();
    manager
        .create_service(service_spec(options.port), None)
        .await
        .context("cannot create the demo service")?;
    let mut observer = Observer::new(engine, &options.name);
    observer.converged(options.timeout).await?;
    let first = wait_for_answer(engine, &options.name, options.port, options.timeout).await?;
    report.record("first answer", started.elapsed(), format!("from {}", first.address));
    say.note(&format!("   It answers: \"{}\" (from {}).", first.quote, first.address));

    let replicas = options.replicas;
    say.note(&format!(
        "4. Scale it to {replicas} replicas, then send 30 requests and see them spread."
    ));
    let started = Instant::now();
    rebalance::scale(&manager, SERVICE, u64::from(replicas)).await?;
    observer
        .until(options.timeout, &format!("{replicas} replicas"), |s| {
            s.service(SERVICE).is_some_and(|s| s.running == u64::from(replicas))
        })
        .await?;
    report.record(&format!("scale to {replicas}"), started.elapsed(), "all running");
    // The forwarder picks new tasks up within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..30 {
        if let Ok(answer) = get_quote(options.port).await {
            *report.spread.entry(answer.address).or_insert(0) += 1;
        }
    }
    say.note(&format!(
        "   30 requests reached {} different replicas: {}.",
        report.spread.len(),
        report
            .spread
            .iter()
            .map(|(address, count)| format!("{}×{count}", address.split('/').next().unwrap_or(address)))
            .collect::<Vec<_>>()
            .join(" ")
    ));

    say.note(&format!(
        "5. Kill the service's containers on the manager, behind the swarm's back, while {TRAFFIC_RATE} requests a second go to it."
    ));
    let selection = TaskSelection {
        service: Some(SERVICE.into()),
        node: Some("manager-1".into()),
        count: None,
    };
    let (killed, cost) = under_traffic(
        options.port,
        chaos::kill_tasks(&cluster, &selection, options.timeout, say),
    )
    .await;
    let killed = killed?;
    report.record(
        "task replacement",
        killed.replaced_after,
        format!("{} tasks killed", killed.killed.len()),
    );
    report.with_traffic(&cost);
    say.note(&format!(
        "   The swarm replaced {} task(s) in {:.1}s; {}.",
        killed.killed.len(),
        killed.replaced_after.as_secs_f64(),
        cost_text(&cost)
    ));

    say.note(
        "6. Crash worker-2 under the same traffic: its container is killed at once; the swarm has to notice by itself.",
    );
    let (crash, cost) = under_traffic(options.port, nodes::crash(&cluster, "worker-2", options.timeout, say)).await;
    let crash = crash?;
    let stage = |name: &str| {
        crash
            .0
            .iter()
            .find(|(what, _)| what == name)
            .map(|(_, d)| *d)
            .unwrap_or_default()
    };
    report.record("crash detection", stage("marked down"), "worker-2 marked down");
    report.record(
        "full recovery",
        stage("everything running again"),
        format!("{} replicas on the other nodes", options.replicas),
    );
    report.with_traffic(&cost);
    say.note(&format!(
        "   Marked down after {:.1}s; all {} replicas ran elsewhere after {:.1}s; {}.",
        stage("marked down").as_secs_f64(),
        options.replicas,
        stage("everything running again").as_secs_f64(),
        cost_text(&cost)
    ));

    say.note("7. Restart worker-2 as the blog does: remove its stale entry, start a fresh container, join it.");
    let cluster = Cluster::open(engine, &options.name).await?;
    let restart = nodes::restart(&cluster, "worker-2", options.timeout, say).await?;
    let ready = restart
        .0
        .iter()
        .find(|(what, _)| what.starts_with("rejoined"))
        .map(|(_, d)| *d)
        .unwrap_or_default();
    report.record("node restart", ready, "worker-2 Ready again");

    say.note("8. Swarm does not move tasks back by itself: rebalance them with the fewest moves.");
    let cluster = Cluster::open(engine, &options.name).await?;
    let rebalanced = rebalance::rebalance(&cluster, &[SERVICE.to_string()], options.timeout, say).await?;
    if let Some(spread) = rebalanced.services.first() {
        let show = |counts: &BTreeMap<String, u64>| {
            counts
                .iter()
                .map(|(n, c)| format!("{n}:{c}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        say.note(&format!("   before {}", show(&spread.before)));
        say.note(&format!("   after  {} ({} moved)", show(&spread.after), spread.moved));
        report.record("rebalance", rebalanced.elapsed, format!("{} tasks moved", spread.moved));
    }
    Ok(())
}
