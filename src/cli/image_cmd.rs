//! image load, image build-demo (and the hidden image write-demo).

use clap::Subcommand;
use swarmlab::cluster::Cluster;
use swarmlab::demo_image::{self, DEMO_TAG};
use swarmlab::error::{Error, Result};
use swarmlab::images::{self, LoadOutcome};

use super::output::{print_json, table};
use super::{ClusterArg, progress};

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Copy images from the host engine into the cluster's nodes (no registry involved)
    #[command(
        after_help = "Examples:\n  swarmlab image load swarmlab/quotes:latest\n  swarmlab image load myapp:1.0 redis:7 --nodes worker-1,worker-2"
    )]
    Load {
        /// Images on the host engine (name:tag or ID)
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
        #[command(flatten)]
        cluster: ClusterArg,
        /// Only these nodes (comma-separated hostnames) [default: every running node]
        #[arg(long, value_delimiter = ',', value_name = "NODE,...")]
        nodes: Option<Vec<String>>,
        /// Print JSON: an array of {node, outcome, detail, seconds}
        #[arg(long)]
        json: bool,
    },
    /// Build the quotes demo service image (static binary, FROM scratch, offline)
    #[command(
        name = "build-demo",
        after_help = "Example:\n  swarmlab image build-demo\n  swarmlab image load swarmlab/quotes:latest"
    )]
    BuildDemo {
        /// Tag of the image
        #[arg(long, default_value = DEMO_TAG)]
        tag: String,
    },
    /// Write the demo service's binary to stdout (what a forwarder container
    /// hands to a client that carries none)
    #[command(name = "write-demo", hide = true)]
    WriteDemo,
}

pub async fn run(command: ImageCommand) -> Result<()> {
    match command {
        ImageCommand::Load {
            images: wanted,
            cluster,
            nodes,
            json,
        } => {
            let name = cluster.cluster()?;
            let engine = super::tunnels_cmd::connect().await?;
            let cluster = Cluster::open(&engine, &name).await?;
            let progress = progress::for_stderr();
            let reports = images::load(&cluster, &wanted, nodes.as_deref(), progress.as_ref()).await;
            drop(progress);
            let reports = reports?;
            let failed = reports.iter().filter(|r| r.outcome == LoadOutcome::Failed).count();
            if json {
                print_json(&reports)?;
            } else {
                let rows = reports.iter().map(|r| {
                    vec![
                        r.node.clone(),
                        r.outcome.as_str().to_string(),
                        format!("{:.2}s", r.seconds),
                        r.detail.clone(),
                    ]
                });
                outln!("{}", table(&["node", "outcome", "time", "detail"], rows));
            }
            if failed > 0 {
                return Err(Error::Other(format!(
                    "loading failed on {failed} node(s); see the table above"
                )));
            }
            Ok(())
        }
        ImageCommand::BuildDemo { tag } => {
            let engine = super::tunnels_cmd::connect().await?;
            let progress = progress::for_stderr();
            let id = demo_image::build(&engine, &tag, progress.as_ref()).await;
            drop(progress);
            let id = id?;
            outln!("Built demo image {tag} ({}).", swarmlab::host_images::short_id(&id));
            Ok(())
        }
        ImageCommand::WriteDemo => demo_image::write_carried(&mut std::io::stdout().lock()),
    }
}
