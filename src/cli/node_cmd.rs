//! node ls, add, rm, drain, activate, promote, demote, crash, start, restart,
//! upgrade.

use std::time::Duration;

use bollard::models::NodeSpecAvailabilityEnum;
use clap::Subcommand;
use swarmlab::cluster::Cluster;
use swarmlab::error::Result;
use swarmlab::naming::Role;
use swarmlab::nodes::{self, Timings};

use super::cluster_cmds::{plural, print_nodes};
use super::output::{print_json, secs};
use swarmlab::input;

use super::{ClusterArg, progress};

const EXAMPLES: &str = "\
Examples:
  swarmlab node add --count 2             # two more workers
  swarmlab node crash worker-2            # pull the plug; the swarm reschedules
  swarmlab node start worker-2            # power it on again: the same swarm node
  docker rm -f swarmlab-worker-2          # gone behind swarmlab's back...
  swarmlab node restart worker-2          # ...recreated and rejoined
  swarmlab node rm worker-3
  swarmlab node upgrade --all --engine 28 # rolling engine upgrade, the leader last";

#[derive(Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum NodeCommand {
    /// List the nodes (as `swarmlab inspect`)
    #[command(visible_alias = "list")]
    Ls {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Print JSON (the shape of `swarmlab inspect --json`)
        #[arg(long)]
        json: bool,
    },
    /// Add nodes; they get the images the other nodes hold
    Add {
        #[command(flatten)]
        cluster: ClusterArg,
        /// manager or worker
        #[arg(long, default_value = "worker", value_parser = parse_role)]
        role: Role,
        /// How many
        #[arg(long, default_value = "1", value_parser = input::count)]
        count: u32,
        /// Node image [default: that of the role's nodes]
        #[arg(long, value_name = "IMAGE", conflicts_with = "engine")]
        image: Option<String>,
        /// Docker engine version of the new nodes, e.g. 28: a swarmlab node image of it, built when missing
        #[arg(long, value_name = "VERSION", value_parser = swarmlab::node_image::EngineVersion::parse)]
        engine: Option<swarmlab::node_image::EngineVersion>,
    },
    /// Remove a node: drained and demoted first unless --force; it leaves the swarm and its container goes
    #[command(visible_alias = "remove")]
    Rm {
        node: String,
        #[command(flatten)]
        cluster: ClusterArg,
        /// Skip draining: remove at once
        #[arg(long)]
        force: bool,
    },
    /// Move the node's tasks elsewhere and keep new ones away
    Drain(NodeArgs),
    /// Let tasks run on the node again
    Activate(NodeArgs),
    /// Make the node a manager
    Promote(NodeArgs),
    /// Make the node a worker
    Demote(NodeArgs),
    /// Pull the plug: kill the node's container at once (kept); time how long the swarm takes to notice and recover
    Crash(TimedNodeArgs),
    /// Power a crashed or stopped node on again; it comes back as the same swarm node
    Start(TimedNodeArgs),
    /// Recreate a node whose container is gone or broken: fresh container, same name and address, rejoined, images copied
    Restart(TimedNodeArgs),
    /// Cut the node off from the other nodes (or those in --from) while its container runs on; time how the swarm copes
    #[command(
        after_help = "Examples:\n  swarmlab node partition worker-2            # from every other node: marked down, tasks move\n  swarmlab node partition manager-3 --from manager-1,manager-2\n  swarmlab node heal worker-2"
    )]
    Partition(PartitionArgs),
    /// Undo a partition and any slowing down; wait until the node is Ready and the cluster whole
    Heal(TimedNodeArgs),
    /// Delay (and drop a share of) what the node sends, with netem where the kernel has it
    #[command(
        after_help = "Example:\n  swarmlab node slow worker-1 --delay 200ms --loss 5%\n  swarmlab node heal worker-1"
    )]
    Slow(SlowArgs),
    /// Rolling engine upgrade: drain, new container from the new image on the same volume (same swarm node), Ready, active; managers first (leader last), then workers
    #[command(
        after_help = "Examples:\n  swarmlab node upgrade --all --engine 28\n  swarmlab node upgrade worker-1 worker-2 --image swarmlab/node:26.1 --json"
    )]
    Upgrade(UpgradeArgs),
}

#[derive(clap::Args)]
pub struct UpgradeArgs {
    /// Hostnames of the nodes to upgrade (with --all: every node)
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    nodes: Vec<String>,
    /// Every node, in the safe order
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    cluster: ClusterArg,
    /// Docker engine version to upgrade to, e.g. 28: a swarmlab node image of it, built when missing
    #[arg(long, value_name = "VERSION", value_parser = swarmlab::node_image::EngineVersion::parse,
          required_unless_present = "image", conflicts_with = "image")]
    engine: Option<swarmlab::node_image::EngineVersion>,
    /// Node image to upgrade to
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// How long to wait for the swarm at each stage of each node
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
    /// Print JSON: [{node, from_image, to_image, from_engine, to_engine, drained, ready, total}]
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct PartitionArgs {
    #[command(flatten)]
    timed: TimedNodeArgs,
    /// Only from these nodes, e.g. manager-1,worker-3 [default: every other node]
    #[arg(long, value_delimiter = ',', value_name = "NODE,...")]
    from: Vec<String>,
}

#[derive(clap::Args)]
pub struct SlowArgs {
    /// The node's hostname, e.g. worker-2
    node: String,
    #[command(flatten)]
    cluster: ClusterArg,
    /// Added to everything the node sends, e.g. 200ms
    #[arg(long, value_parser = input::interval, value_name = "DURATION")]
    delay: Duration,
    /// Share of what it sends to drop, e.g. 5%
    #[arg(long, default_value = "0%", value_parser = loss, value_name = "PERCENT")]
    loss: f64,
}

fn loss(text: &str) -> std::result::Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a share from 0% to 100%")),
    }
}

#[derive(clap::Args)]
pub struct NodeArgs {
    /// The node's hostname, e.g. worker-2
    node: String,
    #[command(flatten)]
    cluster: ClusterArg,
}

#[derive(clap::Args)]
pub struct TimedNodeArgs {
    /// The node's hostname, e.g. worker-2
    node: String,
    #[command(flatten)]
    cluster: ClusterArg,
    /// How long to wait for the swarm at each stage
    #[arg(long, default_value = "2m", value_parser = input::duration)]
    timeout: Duration,
    /// Print the timings as JSON: [[stage, seconds], ...]
    #[arg(long)]
    json: bool,
}

fn parse_role(text: &str) -> std::result::Result<Role, String> {
    text.parse().map_err(|e: swarmlab::Error| e.to_string())
}

pub async fn run(command: NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Ls { cluster, json } => {
            let cluster = cluster.open().await?;
            let (rows, problem) = swarmlab::lifecycle::inspect(&cluster).await?;
            print_nodes(&cluster.name, &rows, problem.as_ref(), json)
        }
        NodeCommand::Add {
            cluster,
            role,
            count,
            image,
            engine,
        } => {
            let cluster = cluster.open().await?;
            let choice = swarmlab::node_image::Choice::from_parts(image.as_ref(), engine.as_ref());
            let progress = progress::for_stderr();
            let added = nodes::add(&cluster, role, count, choice.as_ref(), progress.as_ref()).await;
            drop(progress);
            let (added, elapsed) = added?;
            outln!(
                "Added {} to cluster {:?} in {}: {}.",
                plural(added.len(), role.as_str()),
                cluster.name.as_str(),
                secs(elapsed),
                added.join(", ")
            );
            Ok(())
        }
        NodeCommand::Rm { node, cluster, force } => {
            let cluster = cluster.open().await?;
            let progress = progress::for_stderr();
            let removed = nodes::remove(&cluster, &node, force, progress.as_ref()).await;
            drop(progress);
            outln!("Removed {node} in {}.", secs(removed?));
            Ok(())
        }
        NodeCommand::Drain(args) => availability(args, NodeSpecAvailabilityEnum::DRAIN, "drained").await,
        NodeCommand::Activate(args) => availability(args, NodeSpecAvailabilityEnum::ACTIVE, "active").await,
        NodeCommand::Promote(args) => role(args, Role::Manager).await,
        NodeCommand::Demote(args) => role(args, Role::Worker).await,
        NodeCommand::Crash(args) => {
            timed(args, "crashed", |cluster, node, timeout, progress| {
                Box::pin(async move { nodes::crash(cluster, node, timeout, progress).await })
            })
            .await
        }
        NodeCommand::Start(args) => {
            timed(args, "started", |cluster, node, timeout, progress| {
                Box::pin(async move { nodes::start(cluster, node, timeout, progress).await })
            })
            .await
        }
        NodeCommand::Upgrade(args) => upgrade(args).await,
        NodeCommand::Partition(args) => {
            let cluster = args.timed.cluster.open().await?;
            let progress = progress::for_stderr();
            let t = &args.timed;
            let timings = nodes::partition(&cluster, &t.node, &args.from, t.timeout, progress.as_ref()).await;
            drop(progress);
            report(&args.timed, "cut off", timings?)
        }
        NodeCommand::Heal(args) => {
            timed(args, "healed", |cluster, node, timeout, progress| {
                Box::pin(async move { nodes::heal(cluster, node, timeout, progress).await })
            })
            .await
        }
        NodeCommand::Slow(args) => {
            let cluster = args.cluster.open().await?;
            nodes::slow(&cluster, &args.node, args.delay, args.loss).await?;
            outln!(
                "{} sends with {} more delay and {}% loss; `swarmlab node heal {}` undoes it.",
                args.node,
                humantime::format_duration(args.delay),
                args.loss,
                args.node
            );
            Ok(())
        }
        NodeCommand::Restart(args) => {
            timed(args, "recreated", |cluster, node, timeout, progress| {
                Box::pin(async move { nodes::restart(cluster, node, timeout, progress).await })
            })
            .await
        }
    }
}

async fn upgrade(args: UpgradeArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    let choice = swarmlab::node_image::Choice::from_parts(args.image.as_ref(), args.engine.as_ref())
        .ok_or_else(|| swarmlab::Error::invalid("say what to upgrade to: --engine VERSION or --image IMAGE"))?;
    let progress = progress::for_stderr();
    let upgraded = nodes::upgrade(&engine, &name, &args.nodes, &choice, args.timeout, progress.as_ref()).await;
    drop(progress);
    let upgraded = upgraded?;
    if args.json {
        return print_json(&upgraded);
    }
    let rows = upgraded.iter().map(|u| {
        vec![
            u.node.clone(),
            format!("{} → {}", u.from_engine, u.to_engine),
            format!("{:.1}s", u.drained),
            format!("{:.1}s", u.ready),
            format!("{:.1}s", u.total),
        ]
    });
    outln!(
        "{}",
        super::output::table(&["node", "engine", "drained", "ready", "total"], rows)
    );
    outln!(
        "Upgraded {} of cluster {:?}; tasks stay where the drains moved them: `swarmlab rebalance` spreads them again.",
        plural(upgraded.len(), "node"),
        name.as_str()
    );
    Ok(())
}

async fn availability(args: NodeArgs, availability: NodeSpecAvailabilityEnum, word: &str) -> Result<()> {
    let cluster = args.cluster.open().await?;
    nodes::set_availability(&cluster, &args.node, availability).await?;
    outln!("{} is {word}.", args.node);
    Ok(())
}

async fn role(args: NodeArgs, role: Role) -> Result<()> {
    let cluster = args.cluster.open().await?;
    nodes::set_role(&cluster, &args.node, role).await?;
    outln!("{} is now a {role}.", args.node);
    Ok(())
}

type Operation = for<'a> fn(
    &'a Cluster,
    &'a str,
    Duration,
    &'a dyn swarmlab::progress::Progress,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Timings>> + 'a>>;

async fn timed(args: TimedNodeArgs, word: &str, operation: Operation) -> Result<()> {
    let cluster = args.cluster.open().await?;
    let progress = progress::for_stderr();
    let timings = operation(&cluster, &args.node, args.timeout, progress.as_ref()).await;
    drop(progress);
    report(&args, word, timings?)
}

/// Prints an operation's timings: a sentence, or JSON pairs.
fn report(args: &TimedNodeArgs, word: &str, timings: Timings) -> Result<()> {
    if args.json {
        let pairs: Vec<(String, f64)> = timings
            .0
            .iter()
            .map(|(what, d)| (what.clone(), d.as_secs_f64()))
            .collect();
        return print_json(&pairs);
    }
    let stages: Vec<String> = timings
        .0
        .iter()
        .map(|(what, d)| format!("{what} after {}", secs(*d)))
        .collect();
    outln!("{} {word}: {}.", args.node, stages.join(", "));
    Ok(())
}
