//! create, ls, inspect, env, delete.

use std::time::Duration;

use clap::Args;
use swarmlab::cluster::Cluster;
use swarmlab::config::ClusterFile;
use swarmlab::error::Result;
use swarmlab::lifecycle::{self, CreateFlags, CreateOptions};
use swarmlab::naming::{ClusterName, DEFAULT_CLUSTER};

use super::output::{print_json, secs, shell_quote, table};
use swarmlab::input;

use super::{ClusterArg, progress};

pub const CREATE_EXAMPLES: &str = "\
Examples:
  swarmlab create                                  # 1 manager, 3 workers
  swarmlab create --name ha --managers 3 --workers 5
  swarmlab create --heartbeat 1s                   # nodes marked down within seconds
  swarmlab create --engine 26                      # nodes run Docker 26.1 (built if missing)
  swarmlab create --image docker:dind              # the official image instead of swarmlab/node
  swarmlab config init lab.toml && swarmlab create --config lab.toml";

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// A cluster file (TOML; `swarmlab config init` writes an example); flags win over it
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Number of manager nodes (3, 5 or 7 for a highly available swarm) [default: 1]
    #[arg(long, value_parser = input::count, value_name = "N", allow_negative_numbers = true)]
    managers: Option<u32>,
    /// Number of worker nodes [default: 3]
    #[arg(long, value_parser = input::count, value_name = "N", allow_negative_numbers = true)]
    workers: Option<u32>,
    /// Node image [env: SWARMLAB_NODE_IMAGE] [default: swarmlab/node:latest if built, else docker:dind]
    #[arg(long, value_name = "IMAGE", conflicts_with = "engine")]
    image: Option<String>,
    /// Docker engine version of the nodes, e.g. 28, 26.1 or 20.10: a swarmlab node image of it, built when missing
    #[arg(long, value_name = "VERSION", value_parser = swarmlab::node_image::EngineVersion::parse)]
    engine: Option<swarmlab::node_image::EngineVersion>,
    /// Swarm dispatcher heartbeat, e.g. 1s (Swarm's default is 5s)
    #[arg(long, value_parser = input::interval, value_name = "DURATION")]
    heartbeat: Option<Duration>,
    /// How long to wait for every node to be Ready [default: 2m, or 2s a node past 60 nodes]
    #[arg(long, value_parser = input::duration, value_name = "DURATION")]
    wait: Option<Duration>,
    /// Keep what was created when creation fails or is interrupted
    #[arg(long)]
    retain: bool,
    /// Fixed host port (on 127.0.0.1) for the first manager's engine API [default: any free port]
    #[arg(long, value_name = "PORT", value_parser = input::port)]
    api_port: Option<u16>,
    /// Serve the nodes' engine APIs without TLS: anyone on this machine can use them
    #[arg(long)]
    insecure: bool,
}

pub async fn create(args: CreateArgs) -> Result<()> {
    // The whole file is checked before anything else happens.
    let file = match &args.config {
        Some(path) => ClusterFile::load(path)?,
        None => ClusterFile::default(),
    };
    let flags = CreateFlags {
        name: args.cluster.explicit(),
        managers: args.managers,
        workers: args.workers,
        image: args.image,
        engine: args.engine,
        heartbeat: args.heartbeat,
        wait: args.wait,
        retain: args.retain,
        api_port: args.api_port,
        insecure: args.insecure,
    };
    let options = CreateOptions::assemble(flags, &file, DEFAULT_CLUSTER)?;
    let name = options.name.clone();
    if options.insecure {
        errln!(
            "warning: --insecure: the nodes' engine APIs answer plain HTTP on 127.0.0.1, without TLS or client certificates: whoever reaches them is root on this machine (any local user or process, any web page that gets a browser here to send requests)"
        );
    }

    let engine = super::tunnels_cmd::connect().await?;
    let progress = progress::for_stderr();
    let counts = format!(
        "{} and {}",
        plural(options.managers as usize, "manager"),
        plural(options.workers as usize, "worker")
    );
    progress.note(&format!("Creating cluster \"{name}\": {counts}"));
    let stopper = super::signals::Stopper::new("rolling back");
    let created = lifecycle::create(&engine, &options, progress.as_ref(), stopper.token.cancelled()).await;
    drop(stopper);
    drop(progress);
    let created = created?;
    outln!(
        "Cluster {:?} is ready in {}: {counts}, image {}, subnet {}, nodes {}.",
        created.name.as_str(),
        secs(created.elapsed),
        created.image,
        created.subnet,
        created.security,
    );
    outln!(
        "Point the docker CLI at it with:\n  eval \"$(swarmlab env{})\"",
        name_flag(&name)
    );
    Ok(())
}

#[derive(Args)]
pub struct LsArgs {
    /// Print JSON: an array of {name, status, managers_ready, managers, workers_ready, workers, engines}
    #[arg(long)]
    json: bool,
}

pub async fn ls(args: LsArgs) -> Result<()> {
    let engine = super::tunnels_cmd::connect().await?;
    let clusters = lifecycle::list(&engine).await?;
    if args.json {
        return print_json(&clusters);
    }
    if clusters.is_empty() {
        errln!("No clusters. Create one with `swarmlab create`.");
        return Ok(());
    }
    let rows = clusters.iter().map(|c| {
        vec![
            c.name.to_string(),
            serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            format!("{}/{}", c.managers_ready, c.managers),
            format!("{}/{}", c.workers_ready, c.workers),
            if c.engines.is_empty() {
                "-".to_string()
            } else {
                c.engines.join(", ")
            },
        ]
    });
    outln!("{}", table(&["name", "status", "managers", "workers", "engines"], rows));
    Ok(())
}

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// Print JSON: {name, nodes: [{hostname, role, manager_status, swarm_state, availability, container, container_state, address, image, engine_version, api_port, security}]}
    #[arg(long)]
    json: bool,
}

pub async fn inspect(args: InspectArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    let cluster = Cluster::open(&engine, &name).await?;
    let (nodes, problem) = lifecycle::inspect(&cluster).await?;
    print_nodes(&name, &nodes, problem.as_ref(), args.json)
}

/// The node table of `inspect` and `node ls`, and why the swarm could not
/// be read (on stderr; `problem` in JSON) when it could not.
pub fn print_nodes(
    name: &ClusterName,
    nodes: &[lifecycle::NodeRow],
    problem: Option<&swarmlab::Error>,
    json: bool,
) -> Result<()> {
    if json {
        let problem = problem.map(ToString::to_string);
        return print_json(&serde_json::json!({ "name": name, "nodes": nodes, "problem": problem }));
    }
    if let Some(problem) = problem {
        errln!("warning: {problem}");
    }
    let dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    let rows = nodes.iter().map(|n| {
        vec![
            n.hostname.clone(),
            n.role.to_string(),
            dash(n.manager_status.as_str()),
            n.swarm_state.as_str().to_string(),
            dash(n.availability.as_str()),
            n.container.clone(),
            n.container_state.clone(),
            dash(&n.address),
            dash(&n.engine_version),
            n.security.map_or("-", |s| s.as_str()).to_string(),
            n.image.clone(),
        ]
    });
    let headers = [
        "node",
        "role",
        "manager",
        "swarm",
        "availability",
        "container",
        "state",
        "address",
        "engine",
        "security",
        "image",
    ];
    outln!("{}", table(&headers, rows));
    Ok(())
}

#[derive(Args)]
pub struct EnvArgs {
    #[command(flatten)]
    cluster: ClusterArg,
}

pub async fn env(args: EnvArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    let cluster = Cluster::open(&engine, &name).await?;
    let env = cluster.docker_env().await?;
    outln!("export DOCKER_HOST={}", shell_quote(&env.docker_host));
    if env.insecure {
        outln!("unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH");
        outln!("# warning: this cluster was made with --insecure: its engine API has no TLS");
    } else {
        outln!("export DOCKER_TLS_VERIFY=1");
        let cert_path = env.cert_path.to_string_lossy();
        outln!("export DOCKER_CERT_PATH={}", shell_quote(&cert_path));
    }
    // The host engine stays swarmlab's, TLS or docker context included.
    for (var, value) in env.host_engine.exports() {
        outln!("export {var}={}", shell_quote(&value));
    }
    outln!("# Run this command to configure your shell:");
    outln!("# eval \"$(swarmlab env{})\"", name_flag(&name));
    Ok(())
}

#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// Delete every swarmlab cluster
    #[arg(long, conflicts_with = "name")]
    all: bool,
}

pub async fn delete(args: DeleteArgs) -> Result<()> {
    let engine = super::tunnels_cmd::connect().await?;
    if args.all {
        let deleted = lifecycle::delete_all(&engine).await?;
        if deleted.is_empty() {
            outln!("No clusters to delete.");
        }
        for (name, d) in deleted {
            outln!(
                "Deleted cluster {:?} ({}) in {}.",
                name.as_str(),
                counts(&d),
                secs(d.elapsed)
            );
        }
        return Ok(());
    }
    let name = args.cluster.cluster()?;
    let d = lifecycle::delete(&engine, &name).await?;
    outln!(
        "Deleted cluster {:?} ({}) in {}.",
        name.as_str(),
        counts(&d),
        secs(d.elapsed)
    );
    Ok(())
}

fn counts(d: &swarmlab::cluster::Deleted) -> String {
    format!(
        "{}, {}, {}",
        plural(d.containers, "container"),
        plural(d.volumes, "volume"),
        plural(d.networks, "network")
    )
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn name_flag(name: &swarmlab::naming::ClusterName) -> String {
    if name.as_str() == DEFAULT_CLUSTER && std::env::var_os("SWARMLAB_CLUSTER").is_none() {
        String::new()
    } else {
        format!(" --name {name}")
    }
}

#[derive(Args)]
#[command(after_help = "Example:\n  swarmlab context\n  docker --context swarmlab-swarmlab node ls")]
pub struct ContextArgs {
    #[command(flatten)]
    cluster: ClusterArg,
}

/// Creates (or updates) the docker context `swarmlab-NAME`.
pub async fn context(args: ContextArgs) -> Result<()> {
    let cluster = args.cluster.open().await?;
    let name = swarmlab::context::write(&cluster).await?;
    outln!(
        "Docker context {name} points at cluster {:?}; try: docker --context {name} node ls",
        cluster.name.as_str()
    );
    Ok(())
}
