//! top: the ctop-like terminal view.

use clap::Args;
use swarmlab::error::Result;

use super::ClusterArg;

#[derive(Args)]
#[command(
    after_help = "Keys: ↑/↓ select, enter open a node (its task containers), esc back,\n      s cycle the sort, n/c/m/t sort by name/CPU/memory/tasks, q quit"
)]
pub struct TopArgs {
    #[command(flatten)]
    cluster: ClusterArg,
}

pub async fn run(args: TopArgs) -> Result<()> {
    let cluster = args.cluster.open().await?;
    swarmlab::top::run(&cluster).await
}
