//! ports: what the cluster publishes on 127.0.0.1, and the hidden `serve`
//! that the forwarder container runs.

use std::time::Duration;

use clap::{Args, Subcommand};
use swarmlab::cluster::Cluster;
use swarmlab::engine::HostEngine;
use swarmlab::error::Result;
use swarmlab::forwarder_container::{self as container, PortState};
use swarmlab::ports;
use swarmlab::tls::ClusterTls;

use super::ClusterArg;
use super::output::{print_json, table};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  docker service create --name web -p 8080:8080 swarmlab/quotes:latest\n  swarmlab ports\n  curl localhost:8080/api/quote"
)]
pub struct PortsArgs {
    #[command(subcommand)]
    action: Option<PortsAction>,
    #[command(flatten)]
    cluster: ClusterArg,
    /// Print JSON: {ipvs, ports: [{service, published_port, target_port, publish_mode, address, path, state, message, backends: [{task, node, address, connections, failures, bytes_in, bytes_out}]}]}
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum PortsAction {
    /// Run the forwarder in the foreground (what the forwarder container runs)
    #[command(hide = true)]
    Serve(ServeArgs),
    /// Pass connections on to the forwarder (what a port container runs)
    #[command(hide = true)]
    Pass(PassArgs),
}

#[derive(Args)]
struct PassArgs {
    /// The port to listen on, and to connect to
    #[arg(long, value_parser = swarmlab::input::port)]
    port: u16,
    /// The forwarder's name on the cluster network
    #[arg(long)]
    to: String,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// How often to read the swarm
    #[arg(long, default_value = "1s", value_parser = swarmlab::input::interval)]
    interval: Duration,
    /// Connections forwarded at once (1 to 65536); more are closed at once
    #[arg(long, default_value_t = ports::Limits::default().max_connections,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: u32,
    /// Close a connection when nothing has moved either way for this long
    #[arg(long, default_value = "10m", value_parser = swarmlab::input::interval)]
    idle_timeout: Duration,
    /// Where to write the forwarder's status
    #[arg(long, default_value = container::STATUS_PATH)]
    status_file: std::path::PathBuf,
    /// Listen on the cluster network and have port containers published
    /// (an engine whose host network is not the client's)
    #[arg(long)]
    published: bool,
}

pub async fn run(args: PortsArgs) -> Result<()> {
    match args.action {
        Some(PortsAction::Serve(serve_args)) => return serve(serve_args).await,
        Some(PortsAction::Pass(pass)) => {
            return ports::pass(pass.port, &pass.to, super::signals::stop_requested()).await;
        }
        None => {}
    }
    let name = args.cluster.cluster()?;
    let engine = super::tunnels_cmd::connect().await?;
    let cluster = Cluster::open(&engine, &name).await?;
    // Repairs a forwarder that was removed or stopped behind swarmlab's back.
    container::ensure(&engine, &name, cluster.tls(), &swarmlab::labels::Run::new()).await?;
    // A forwarder that has just started writes its first status within a second or so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // A stale status may be one a forwarder just restarted above has not
    // replaced yet: it gets the same few seconds.
    let status = loop {
        match container::read_status(&engine, &name).await {
            Ok(status) if stale(&status).is_none() || tokio::time::Instant::now() >= deadline => break status,
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(error) => return Err(error),
        }
    };
    if args.json {
        return print_json(&status);
    }
    if let Some(age) = stale(&status) {
        errln!(
            "warning: the forwarder last wrote its status {age}s ago (by this machine's clock), so what follows is from then; it may be stuck: `docker logs {}` shows what it does",
            container::container_name(&name)
        );
    }
    if !status.error.is_empty() {
        errln!("warning: the forwarder cannot read the swarm: {}", status.error);
    }
    if status.ports.is_empty() {
        errln!("No published ports. Publish one with, e.g., `docker service create -p 8080:8080 ...`.");
        return Ok(());
    }
    let rows = status.ports.iter().map(|p| {
        let mut backends: Vec<String> = p.backends.iter().map(|b| format!("{}@{}", b.task, b.node)).collect();
        if backends.len() > 4 {
            let more = backends.len() - 3;
            backends.truncate(3);
            backends.push(format!("+{more} more"));
        }
        vec![
            p.service.clone(),
            p.address.clone(),
            format!("{}/tcp", p.target_port),
            p.path.to_string(),
            p.state.to_string(),
            // Over its current backends, since each became one.
            format!(
                "{} / {}",
                p.backends.iter().map(|b| b.connections).sum::<u64>(),
                p.backends.iter().map(|b| b.failures).sum::<u64>()
            ),
            if backends.is_empty() {
                "-".into()
            } else {
                backends.join(", ")
            },
        ]
    });
    outln!(
        "{}",
        table(
            &[
                "service",
                "address",
                "target",
                "path",
                "state",
                "connections / failed",
                "backends"
            ],
            rows
        )
    );
    for port in status.ports.iter().filter(|p| p.state == PortState::PortTaken) {
        errln!("warning: {}", port.message);
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let name = args.cluster.cluster()?;
    // In its container, the forwarder is handed its client identity on
    // standard input when it first starts (read before anything else, so
    // that nothing can fail in between and lose it); later starts find it
    // on disk.
    let mut bundle = None;
    if swarmlab::tls::identity_on_stdin() && !ClusterTls::installed(&name)? {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut text)
            .await
            .map_err(|e| swarmlab::error::Error::Other(format!("cannot read the TLS identity: {e}")))?;
        bundle = Some(text);
    }
    let engine = HostEngine::connect().await?;
    if let Some(bundle) = bundle {
        ClusterTls::install_bundle(&engine, &name, &bundle).await?;
    }
    let stop = super::signals::stop_requested();
    let limits = ports::Limits {
        interval: args.interval,
        max_connections: args.max_connections,
        idle_timeout: args.idle_timeout,
    };
    let (engine, reach) = if args.published {
        (engine.on_cluster_network(), container::Reach::Published)
    } else {
        (engine, container::Reach::Loopback)
    };
    ports::serve(engine, name, &args.status_file, limits, reach, stop).await
}

/// The status's age, when it is stale by this machine's clock.
fn stale(status: &container::ForwarderStatus) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    status.stale_at(now)
}
