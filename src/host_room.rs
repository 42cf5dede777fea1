//! Room on the engine's kernel for more nodes: inotify instances and the
//! neighbour table, raised (or a command to raise them given) where the
//! engine runs on this machine. Elsewhere (a VM, another machine) that
//! kernel is not this process's to read or raise.

use crate::engine::HostEngine;
use crate::error::Result;
use crate::progress::Progress;

/// Before `adding` nodes that make the cluster `total` nodes.
pub(crate) async fn ensure(engine: &HostEngine, adding: u32, total: u32, progress: &dyn Progress) -> Result<()> {
    if !engine.is_local().await? {
        return Ok(());
    }
    // Each node's engine holds inotify instances of its own.
    if let Some(raised) = crate::inotify::ensure_room(adding).await? {
        progress.note(&raised);
    }
    // Every node is a neighbour of every other on the cluster's bridge.
    if let Some(said) = crate::neighbours::ensure_room(total).await? {
        progress.note(&said);
    }
    Ok(())
}
