//! task kill, wait, rebalance, stop, start.

use std::time::Duration;

use clap::{Args, Subcommand};
use swarmlab::chaos::{self, TaskSelection};
use swarmlab::cluster::Cluster;
use swarmlab::convergence::Observer;
use swarmlab::error::Result;
use swarmlab::rebalance;

use super::output::{print_json, secs, table};
use swarmlab::input;

use super::{ClusterArg, progress};

#[derive(Subcommand)]
pub enum TaskCommand {
    /// Remove running task containers behind the swarm's back, and time their replacement
    #[command(
        after_help = "Examples:\n  swarmlab task kill --service quotes-service --node manager-1\n  swarmlab task kill --count 3"
    )]
    Kill {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Only tasks of this service
        #[arg(long)]
        service: Option<String>,
        /// Only tasks on this node
        #[arg(long)]
        node: Option<String>,
        /// At most this many tasks [default: every matching task]
        #[arg(long, value_parser = input::count)]
        count: Option<u32>,
        /// How long to wait for the replacements
        #[arg(long, default_value = "2m", value_parser = input::duration)]
        timeout: Duration,
        /// Print JSON: {killed: [{task, node}], replaced_after: {secs, nanos}}
        #[arg(long)]
        json: bool,
    },
}

pub async fn task(command: TaskCommand) -> Result<()> {
    let TaskCommand::Kill {
        cluster,
        service,
        node,
        count,
        timeout,
        json,
    } = command;
    let cluster = cluster.open().await?;
    let selection = TaskSelection { service, node, count };
    let progress = progress::for_stderr();
    let report = chaos::kill_tasks(&cluster, &selection, timeout, progress.as_ref()).await;
    drop(progress);
    let report = report?;
    if json {
        return print_json(&report);
    }
    let names: Vec<String> = report.killed.iter().map(|k| format!("{}@{}", k.task, k.node)).collect();
    outln!(
        "Killed {} task(s) ({}); the swarm replaced them in {}.",
        names.len(),
        names.join(", "),
        secs(report.replaced_after)
    );
    Ok(())
}

#[derive(Args)]
#[command(after_help = "Example:\n  docker rm -f swarmlab-worker-2 && swarmlab wait --timeout 1m")]
pub struct WaitArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// Give up after this long (exit code 8, saying what is missing)
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
}

pub async fn wait(args: WaitArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    Cluster::open(&engine, &name).await?;
    let (took, state) = Observer::new(&engine, &name).converged(args.timeout).await?;
    outln!(
        "Cluster {:?} is whole after {}: {} node(s) Ready, {} service(s) at their desired replicas.",
        name.as_str(),
        secs(took),
        state.ready.intersection(&state.expected).count(),
        state.services.len()
    );
    Ok(())
}

#[derive(Args)]
#[command(
    after_help = "Example (Swarm's quorum exercise):\n  swarmlab create --managers 3\n  swarmlab node crash manager-2 && swarmlab node crash manager-3   # quorum lost\n  swarmlab recover                    # manager-1 forces a new cluster; 2 and 3 rejoin as managers"
)]
pub struct RecoverArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// How long to wait for the swarm to be whole again
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
    /// Print JSON: {survivor, rejoined, seconds}
    #[arg(long)]
    json: bool,
}

pub async fn recover(args: RecoverArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    let progress = progress::for_stderr();
    let recovered = swarmlab::nodes::recover(&engine, &name, args.timeout, progress.as_ref()).await;
    drop(progress);
    let recovered = recovered?;
    if args.json {
        return print_json(&recovered);
    }
    outln!(
        "Cluster {:?} has a leader again after {:.1}s: a new swarm of {}, {} rejoined as managers; services kept.",
        name.as_str(),
        recovered.seconds,
        recovered.survivor,
        if recovered.rejoined.is_empty() {
            "no other manager".to_string()
        } else {
            recovered.rejoined.join(", ")
        }
    );
    Ok(())
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swarmlab rebalance                  # every replicated service\n  swarmlab rebalance quotes-service"
)]
pub struct RebalanceArgs {
    /// Services to rebalance [default: every replicated service]
    services: Vec<String>,
    #[command(flatten)]
    cluster: ClusterArg,
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
    /// Print JSON: {services: [{service, before, after, moved}], elapsed}
    #[arg(long)]
    json: bool,
}

pub async fn rebalance(args: RebalanceArgs) -> Result<()> {
    let cluster = args.cluster.open().await?;
    let progress = progress::for_stderr();
    let report = rebalance::rebalance(&cluster, &args.services, args.timeout, progress.as_ref()).await;
    drop(progress);
    let report = report?;
    if args.json {
        return print_json(&report);
    }
    for spread in &report.services {
        let nodes: Vec<&String> = spread.before.keys().collect();
        let row = |counts: &std::collections::BTreeMap<String, u64>| -> Vec<String> {
            nodes
                .iter()
                .map(|n| counts.get(*n).copied().unwrap_or(0).to_string())
                .collect()
        };
        let mut headers: Vec<&str> = vec![spread.service.as_str()];
        headers.extend(nodes.iter().map(|n| n.as_str()));
        let mut before = vec!["before".to_string()];
        before.extend(row(&spread.before));
        let mut after = vec!["after".to_string()];
        after.extend(row(&spread.after));
        outln!("{}", table(&headers, [before, after]));
        outln!("{} task(s) moved.", spread.moved);
    }
    outln!("Rebalanced in {}.", secs(report.elapsed));
    Ok(())
}

#[derive(Args)]
pub struct PowerArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// How long `start` waits for the swarm to be whole again
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
}

pub async fn stop(args: PowerArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    let progress = progress::for_stderr();
    let took = swarmlab::lifecycle::stop(&engine, &name, progress.as_ref()).await;
    drop(progress);
    outln!(
        "Stopped cluster {:?} in {}; `swarmlab start` brings it back.",
        name.as_str(),
        secs(took?)
    );
    Ok(())
}

pub async fn start(args: PowerArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    let progress = progress::for_stderr();
    let took = swarmlab::lifecycle::start(&engine, &name, args.timeout, progress.as_ref()).await;
    drop(progress);
    outln!("Cluster {:?} is back in {}.", name.as_str(), secs(took?));
    Ok(())
}
