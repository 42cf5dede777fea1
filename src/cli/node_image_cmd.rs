//! node-image build.

use clap::Subcommand;
use swarmlab::engine::HostEngine;
use swarmlab::error::Result;
use swarmlab::node_image::{self, BuildOptions};

use super::progress;

#[derive(Subcommand)]
pub enum NodeImageCommand {
    /// Build a Docker-in-Docker node image from Debian's packages (debootstrap; no registry needed)
    #[command(after_help = "Example:\n  sudo swarmlab node-image build\n  swarmlab create")]
    Build {
        /// Tag of the image
        #[arg(long, default_value = node_image::DEFAULT_TAG)]
        tag: String,
        /// Debian suite
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// Debian mirror [env: SWARMLAB_DEBIAN_MIRROR] [default: http://deb.debian.org/debian]
        #[arg(long)]
        mirror: Option<String>,
    },
}

pub async fn run(command: NodeImageCommand) -> Result<()> {
    match command {
        NodeImageCommand::Build { tag, suite, mirror } => {
            let engine = HostEngine::connect().await?;
            let mut options = BuildOptions {
                tag,
                suite,
                ..Default::default()
            };
            if let Some(mirror) = mirror {
                options.mirror = mirror;
            }
            let progress = progress::for_stderr();
            let id = node_image::build(&engine, &options, progress.as_ref()).await;
            drop(progress);
            let id = id?;
            println!(
                "Built node image {} ({}).",
                options.tag,
                swarmlab::host_images::short_id(&id)
            );
            Ok(())
        }
    }
}
