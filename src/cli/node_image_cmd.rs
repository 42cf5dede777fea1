//! node-image build and ls.

use clap::{Subcommand, ValueEnum};
use swarmlab::error::Result;
use swarmlab::node_image::{self, BuildOptions, Builder, EngineVersion};

use super::output::{print_json, table};
use super::progress;

#[derive(Subcommand)]
pub enum NodeImageCommand {
    /// Build a Docker-in-Docker node image from Debian's packages (debootstrap; no registry needed)
    #[command(after_help = "Engines: 20.10 (Debian bookworm), 26.1 (trixie), 28.5 (sid).\n\n\
debootstrap runs here when this machine can (Linux, root, debootstrap), else in a container on the \
engine, of a swarmlab node image already there or of debian:trixie-slim (SWARMLAB_BUILDER_IMAGE names \
another): so it works from macOS, Windows or a remote engine too.\n\n\
Examples:\n  sudo swarmlab node-image build                 # the newest engine, also tagged latest\n  \
sudo swarmlab node-image build --engine 26     # swarmlab/node:26.1\n  \
swarmlab node-image build --builder container  # no root or debootstrap needed here\n  \
swarmlab create --engine 26")]
    Build {
        /// Docker engine version to build (e.g. 28, 26.1, 20.10) [default: the newest]
        #[arg(long, value_name = "VERSION", value_parser = EngineVersion::parse)]
        engine: Option<EngineVersion>,
        /// Tag of the image [default: swarmlab/node:MAJOR.MINOR, and latest when --engine is left out]
        #[arg(long)]
        tag: Option<String>,
        /// Debian mirror [env: SWARMLAB_DEBIAN_MIRROR] [default: http://deb.debian.org/debian]
        #[arg(long)]
        mirror: Option<String>,
        /// Where debootstrap runs
        #[arg(long, value_enum, default_value_t = BuilderArg::Auto)]
        builder: BuilderArg,
    },
    /// List swarmlab's node images on the host engine with their engine versions
    #[command(visible_alias = "list", after_help = "Example:\n  swarmlab node-image ls --json")]
    Ls {
        /// Print JSON: [{id, tags, engine, size, created}]
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BuilderArg {
    /// Here when this machine can, else in a container
    Auto,
    /// On this machine (Linux, root, debootstrap)
    Here,
    /// In a container on the engine (the engine must reach the Debian mirror)
    Container,
}

pub async fn run(command: NodeImageCommand) -> Result<()> {
    match command {
        NodeImageCommand::Build {
            engine: version,
            tag,
            mirror,
            builder,
        } => {
            let engine = super::tunnels_cmd::connect().await?;
            let mut options = BuildOptions {
                engine: version,
                tag,
                builder: match builder {
                    BuilderArg::Auto => Builder::Auto,
                    BuilderArg::Here => Builder::Here,
                    BuilderArg::Container => Builder::Container,
                },
                ..Default::default()
            };
            if let Some(mirror) = mirror {
                options.mirror = mirror;
            }
            let progress = progress::for_stderr();
            let stopper = super::signals::Stopper::new("stopping the build and removing what it made");
            let built = node_image::build(&engine, &options, progress.as_ref(), &stopper.token).await;
            drop(stopper);
            drop(progress);
            let built = built?;
            outln!(
                "Built node image {} with engine {} ({}).",
                built.tags.join(", "),
                built.engine,
                swarmlab::host_images::short_id(&built.id)
            );
            Ok(())
        }
        NodeImageCommand::Ls { json } => {
            let engine = super::tunnels_cmd::connect().await?;
            let images = node_image::list(&engine).await?;
            if json {
                return print_json(&images);
            }
            let rows = images.iter().map(|image| {
                vec![
                    image.reference().to_string(),
                    image.engine.as_ref().map_or("-".into(), ToString::to_string),
                    swarmlab::host_images::short_id(&image.id).to_string(),
                    format!("{:.0}MB", image.size as f64 / 1e6),
                    image.tags.iter().skip(1).cloned().collect::<Vec<_>>().join(", "),
                ]
            });
            outln!("{}", table(&["image", "engine", "id", "size", "also tagged"], rows));
            Ok(())
        }
    }
}
