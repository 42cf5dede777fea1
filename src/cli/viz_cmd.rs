//! viz: the live web visualizer.

use std::net::SocketAddr;

use clap::Args;
use swarmlab::error::Result;
use swarmlab::viz;

use super::ClusterArg;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swarmlab viz                 # http://127.0.0.1:8000\n  swarmlab viz --addr 127.0.0.1:9000 --open\n  swarmlab viz --addr 0.0.0.0:8000 --public   # other machines too (warned)"
)]
pub struct VizArgs {
    #[command(flatten)]
    cluster: ClusterArg,
    /// Address to serve the page on
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Allow an --addr other machines can reach (the page shows the cluster to whoever reaches it)
    #[arg(long)]
    public: bool,
    /// Open the page in the default browser
    #[arg(long)]
    open: bool,
}

pub async fn run(args: VizArgs) -> Result<()> {
    let cluster = args.cluster.open().await?;
    // Opening the cluster connected (and started the tunnels) already.
    let engine = cluster.engine.clone();
    let open = args.open;
    let listening = move |address: SocketAddr| {
        let url = format!("http://{address}/");
        errln!(
            "Visualizer of cluster {:?} on {url} (Ctrl-C stops it)",
            cluster.name.as_str()
        );
        if open {
            let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
            if std::process::Command::new(opener).arg(&url).spawn().is_err() {
                errln!("warning: could not run {opener}; open {url} yourself");
            }
        }
    };
    let name = args.cluster.cluster()?;
    if args.public && !args.addr.ip().is_loopback() {
        errln!(
            "warning: --public: the visualizer listens on {} and shows the cluster's nodes, services and tasks to every machine that reaches it",
            args.addr
        );
    }
    viz::serve(
        &engine,
        &name,
        args.addr,
        args.public,
        listening,
        super::signals::stop_requested(),
    )
    .await
}
