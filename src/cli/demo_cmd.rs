//! demo: the whole scenario, narrated, with a table of timings.

use std::time::Duration;

use clap::Args;
use swarmlab::demo::{self, DemoOptions};
use swarmlab::error::Result;
use swarmlab::naming::ClusterName;

use super::output::{print_json, table};
use swarmlab::input;

use super::progress;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swarmlab demo\n  swarmlab demo --workers 5 --keep\n  swarmlab demo --engine 28       # on Docker 28 nodes\n  swarmlab demo --json > timings.json\n  swarmlab demo --replicas 5 --timeout 5m   # on a slow host"
)]
pub struct DemoArgs {
    /// Name of the demo's cluster
    #[arg(long, default_value = "demo")]
    name: String,
    /// Number of worker nodes
    #[arg(long, default_value = "3", value_parser = input::count)]
    workers: u32,
    /// Host port of the quotes service
    #[arg(long, default_value = "8080", value_parser = input::port)]
    port: u16,
    /// Replicas the quotes service is scaled to
    #[arg(long, default_value = "11", value_parser = clap::value_parser!(u32).range(1..=1000))]
    replicas: u32,
    /// Swarm heartbeat: how soon a crashed node is noticed
    #[arg(long, default_value = "1s", value_parser = input::interval)]
    heartbeat: Duration,
    /// Docker engine version of the nodes, e.g. 28 (a swarmlab node image of it, built when missing)
    #[arg(long, value_name = "VERSION", value_parser = swarmlab::node_image::EngineVersion::parse)]
    engine: Option<swarmlab::node_image::EngineVersion>,
    /// Keep the cluster at the end
    #[arg(long)]
    keep: bool,
    /// How long each wait may take (convergence, the first answer, a recovery) before the demo gives up
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
    /// Print the report as JSON: {cluster, timings: [{stage, seconds, detail, traffic?: {requests, failed, longest_gap}}], spread: {replica: requests}}
    #[arg(long)]
    json: bool,
}

pub async fn run(args: DemoArgs) -> Result<()> {
    if args.workers < 2 {
        return Err(swarmlab::Error::invalid(
            "the demo crashes worker-2: use --workers 2 or more",
        ));
    }
    let options = DemoOptions {
        name: ClusterName::new(&args.name)?,
        workers: args.workers,
        port: args.port,
        replicas: args.replicas,
        heartbeat: args.heartbeat,
        engine: args.engine,
        keep: args.keep,
        timeout: args.timeout,
    };
    let engine = super::tunnels_cmd::connect().await?;
    let progress = progress::for_stderr();
    // What it does then, the demo says itself.
    let stopper = super::signals::Stopper::new("stopping the demo");
    let report = demo::run(&engine, &options, progress.as_ref(), &stopper.token).await;
    drop(stopper);
    drop(progress);
    // Only here is --timeout known to be the way out.
    let report = report.map_err(|e| match e {
        swarmlab::Error::Timeout { what, after, hint } => swarmlab::Error::Timeout {
            what,
            after,
            hint: format!("{hint}; on a slow host, give the demo longer with --timeout"),
        },
        e => e,
    })?;
    if args.json {
        return print_json(&report);
    }
    let rows = report.timings.iter().map(|t| {
        let (failed, gap) = match &t.traffic {
            Some(cost) => (
                format!("{} of {}", cost.failed, cost.requests),
                format!("{:.2}s", cost.longest_gap),
            ),
            None => (String::new(), String::new()),
        };
        vec![
            t.stage.clone(),
            format!("{:.2}s", t.seconds),
            t.detail.clone(),
            failed,
            gap,
        ]
    });
    outln!(
        "\n{}",
        table(&["stage", "time", "what", "requests failed", "longest gap"], rows)
    );
    Ok(())
}
