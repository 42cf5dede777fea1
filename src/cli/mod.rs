//! Command-line definitions and dispatch. Each command lives in its own
//! file and does little more than call the library and print the result.

/// `println!` that neither panics nor kills when stdout's reader is gone.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_line($crate::cli::output::Stream::Out, format_args!($($arg)*))
    };
}

/// `eprintln!` that neither panics nor kills when stderr's reader is gone.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_line($crate::cli::output::Stream::Err, format_args!($($arg)*))
    };
}

mod cluster_cmds;
mod demo_cmd;
mod image_cmd;
mod lab_cmds;
mod meta_cmds;
mod node_cmd;
mod node_image_cmd;
mod output;
mod ports_cmd;
mod progress;
mod signals;
mod top_cmd;
mod traffic_cmd;
mod tunnels_cmd;
mod viz_cmd;

use clap::{Args, Parser, Subcommand, error::ErrorKind};
use swarmlab::error::{Error, Result};
use swarmlab::naming::{ClusterName, DEFAULT_CLUSTER};

const EXAMPLES: &str = "\
Examples:
  swarmlab create                      # 1 manager + 3 workers, named \"swarmlab\"
  eval \"$(swarmlab env)\"               # point the docker CLI at the cluster
  docker node ls
  swarmlab create --name ha --managers 3 --workers 2
  swarmlab ls
  swarmlab delete --all";

#[derive(Parser)]
#[command(
    name = "swarmlab",
    version,
    about = "Multi-node Docker Swarm clusters on one machine, from Docker-in-Docker containers",
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a cluster: managers and workers, each a container running its own Docker engine
    #[command(after_help = cluster_cmds::CREATE_EXAMPLES)]
    Create(cluster_cmds::CreateArgs),
    /// List clusters with their nodes' readiness
    #[command(visible_alias = "list")]
    Ls(cluster_cmds::LsArgs),
    /// Show the nodes of a cluster
    Inspect(cluster_cmds::InspectArgs),
    /// Print the shell exports that point the docker CLI at a cluster's leader
    #[command(after_help = "Example:\n  eval \"$(swarmlab env)\"\n  docker node ls")]
    Env(cluster_cmds::EnvArgs),
    /// Delete a cluster and everything it created
    #[command(visible_alias = "rm")]
    Delete(cluster_cmds::DeleteArgs),
    /// Run the whole scenario on a fresh cluster, narrated, and time every step
    Demo(demo_cmd::DemoArgs),
    /// Node operations: ls, add, rm, drain, activate, promote, demote, crash, start, restart, partition, heal, slow, upgrade
    #[command(subcommand)]
    Node(node_cmd::NodeCommand),
    /// Kill running tasks behind the swarm's back
    #[command(subcommand)]
    Task(lab_cmds::TaskCommand),
    /// Wait until every node that should be up is Ready and every service runs its replicas
    Wait(lab_cmds::WaitArgs),
    /// After a lost quorum: a new swarm of a surviving manager (services kept), the other managers rejoined
    Recover(lab_cmds::RecoverArgs),
    /// Spread replicas evenly over the Ready nodes with the fewest moves
    Rebalance(lab_cmds::RebalanceArgs),
    /// Stop a whole cluster (its state is kept)
    Stop(lab_cmds::PowerArgs),
    /// Start a stopped cluster and wait until it is whole
    Start(lab_cmds::PowerArgs),
    /// A ctop-like terminal view: CPU, memory, network and tasks of each node
    Top(top_cmd::TopArgs),
    /// Serve a live web page of the cluster: a column per node, a box per task
    Viz(viz_cmd::VizArgs),
    /// List the ports the cluster publishes on 127.0.0.1, with their backends
    Ports(ports_cmd::PortsArgs),
    /// Send requests to a published port and count who answers, how fast, and what fails
    Traffic(traffic_cmd::TrafficArgs),
    /// Move images into the cluster's nodes; build the demo image
    #[command(subcommand)]
    Image(image_cmd::ImageCommand),
    /// Build the node image
    #[command(subcommand, name = "node-image")]
    NodeImage(node_image_cmd::NodeImageCommand),
    /// Create or update the docker context swarmlab-NAME for a cluster
    Context(cluster_cmds::ContextArgs),
    /// Cluster files: write an example with every key
    #[command(subcommand)]
    Config(meta_cmds::ConfigCommand),
    /// Print shell completions
    Completions(meta_cmds::CompletionsArgs),
    /// Print the man page (roff)
    Man,
    /// Keep an ssh:// engine's published ports tunnelled here (started by the other commands)
    #[command(hide = true)]
    Tunnels,
}

/// `--name`, shared by every command that works on one cluster.
#[derive(Args, Clone)]
pub struct ClusterArg {
    /// Cluster name [env: SWARMLAB_CLUSTER] [default: swarmlab]
    #[arg(long, short = 'n', value_name = "NAME")]
    name: Option<String>,
}

impl ClusterArg {
    /// The named cluster on the host engine.
    pub async fn open(&self) -> Result<swarmlab::cluster::Cluster> {
        let name = self.cluster()?;
        let engine = tunnels_cmd::connect().await?;
        swarmlab::cluster::Cluster::open(&engine, &name).await
    }

    pub fn cluster(&self) -> Result<ClusterName> {
        ClusterName::new(&self.explicit().unwrap_or_else(|| DEFAULT_CLUSTER.to_string()))
    }

    /// The name given by --name or SWARMLAB_CLUSTER, if any.
    pub fn explicit(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| std::env::var("SWARMLAB_CLUSTER").ok().filter(|s| !s.is_empty()))
    }
}

pub fn run() -> Result<()> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Create(args) => cluster_cmds::create(args).await,
            Command::Ls(args) => cluster_cmds::ls(args).await,
            Command::Inspect(args) => cluster_cmds::inspect(args).await,
            Command::Env(args) => cluster_cmds::env(args).await,
            Command::Delete(args) => cluster_cmds::delete(args).await,
            Command::Demo(args) => demo_cmd::run(args).await,
            Command::Node(command) => node_cmd::run(command).await,
            Command::Task(command) => lab_cmds::task(command).await,
            Command::Wait(args) => lab_cmds::wait(args).await,
            Command::Recover(args) => lab_cmds::recover(args).await,
            Command::Rebalance(args) => lab_cmds::rebalance(args).await,
            Command::Stop(args) => lab_cmds::stop(args).await,
            Command::Start(args) => lab_cmds::start(args).await,
            Command::Top(args) => top_cmd::run(args).await,
            Command::Viz(args) => viz_cmd::run(args).await,
            Command::Ports(args) => ports_cmd::run(args).await,
            Command::Traffic(args) => traffic_cmd::run(args).await,
            Command::Image(command) => image_cmd::run(command).await,
            Command::Tunnels => tunnels_cmd::run().await,
            Command::NodeImage(command) => node_image_cmd::run(command).await,
            Command::Context(args) => cluster_cmds::context(args).await,
            Command::Config(command) => meta_cmds::config(command),
            Command::Completions(args) => meta_cmds::completions(args),
            Command::Man => meta_cmds::man(),
        }
    })
}

/// Help and version go out as clap prints them; any other parse error
/// becomes one line with a pointer to the help.
fn usage_error(error: clap::Error) -> Result<()> {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            Ok(())
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = error.print();
            Err(Error::invalid("a command is needed: see `swarmlab --help`"))
        }
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let message = first.trim_start_matches("error: ");
            let command = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
            let help = match command {
                Some(command) => format!("swarmlab {command} --help"),
                None => "swarmlab --help".to_string(),
            };
            Err(Error::invalid(format!("{message}; see `{help}`")))
        }
    }
}

fn init_tracing() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SWARMLAB_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // It would print (and so panic) on a stderr whose reader is gone.
            .log_internal_errors(false)
            .init();
    }
}

/// A panic is a bug; say so on one line instead of a backtrace dump.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        errln!(
            "swarmlab: internal error{location}: {}; please report it",
            swarmlab::error::one_line(&message)
        );
    }));
}
