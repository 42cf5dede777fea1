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
    /// Replicas the quotes service is scaled to (at least one a node)
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
    /// How long each wait may take (the create, convergence, the first answer, a recovery) before the demo gives up
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
    /// Print the report as JSON: {cluster, timings: [{stage, seconds, detail, traffic?: {requests, failed, longest_gap}}], spread: {replica: requests}}
    #[arg(long)]
    json: bool,
}

pub async fn run(args: DemoArgs) -> Result<()> {
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
    options.check()?;
    let engine = super::tunnels_cmd::connect().await?;
    let progress = progress::for_stderr();
    // What it does then, the demo says itself.
    let stopper = super::signals::Stopper::new("stopping the demo");
    let report = demo::run(&engine, &options, progress.as_ref(), &stopper.token).await;
    drop(stopper);
    drop(progress);
    let report = report.map_err(demo_hint)?;
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

/// The library's hints name other commands' options and a cluster that the
/// demo deleted (unless --keep): only here is the way out known.
fn demo_hint(error: swarmlab::Error) -> swarmlab::Error {
    match error {
        swarmlab::Error::Timeout { what, after, .. } => swarmlab::Error::Timeout {
            what,
            after,
            hint: "on a slow host, give the demo longer with --timeout (and --keep to look at its cluster after)"
                .into(),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_demo_says_to_give_it_longer() {
        let timeout = swarmlab::Error::Timeout {
            what: "11 replicas".into(),
            after: Duration::from_secs(120),
            hint: "raise --wait".into(),
        };
        assert_eq!(
            demo_hint(timeout).to_string(),
            "timed out after 2m waiting for 11 replicas; on a slow host, give the demo longer with --timeout (and --keep to look at its cluster after)"
        );
        let other = demo_hint(swarmlab::Error::invalid("bad"));
        assert_eq!(other.to_string(), "bad");
    }
}
