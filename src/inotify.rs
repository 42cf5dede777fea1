//! The kernel's inotify limits against the size of a cluster.
//!
//! Every node engine from Docker 23 on holds an inotify instance (measured:
//! one per node with 28.5, none with 20.10), and instances count against one
//! limit for all of the user's processes, root's for a rootful engine:
//! `fs.inotify.max_user_instances`, 128 by default. A hundred nodes plus
//! the host's own watchers exceed it, and node engines then fail to start
//! with "too many open files" (as kind's nodes do at 20 workers, for their
//! systemd). Checked before nodes are made, so that the fix is said at once.

use std::path::Path;

use crate::error::{Error, Result};

const INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";
const WATCHES: &str = "/proc/sys/fs/inotify/max_user_watches";
/// Instances a node needs: its dockerd's one.
const INSTANCES_PER_NODE: u64 = 1;
/// Watches a node may need: none were seen on idle nodes; this leaves room
/// for tasks that watch files (config reloaders), 256 each.
const WATCHES_PER_NODE: u64 = 256;
/// Instances left for everything else the user runs meanwhile.
const HEADROOM: u64 = 32;

/// The limits, and the instances in use by the user the nodes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_instances: u64,
    pub(crate) max_watches: u64,
    pub(crate) instances_in_use: u64,
}

/// What it takes to add `nodes` nodes: nothing, or limits this high.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Enough,
    Raise { instances: u64, watches: u64 },
}

/// Compares the limits with what `nodes` more nodes need.
pub(crate) fn verdict(limits: Limits, nodes: u32) -> Verdict {
    let nodes = u64::from(nodes);
    let instances = limits.instances_in_use + nodes * INSTANCES_PER_NODE + HEADROOM;
    let watches = nodes * WATCHES_PER_NODE;
    if instances <= limits.max_instances && watches <= limits.max_watches {
        return Verdict::Enough;
    }
    // Round up to a power of two, as these limits are usually written.
    Verdict::Raise {
        instances: instances.max(limits.max_instances).next_power_of_two(),
        watches: watches.max(limits.max_watches),
    }
}

/// This machine's limits, and the inotify instances root's processes hold
/// (a rootful engine's nodes count against root's limit; where swarmlab
/// cannot look into root's processes it counts none); None where the
/// kernel does not say (not Linux).
pub(crate) fn limits() -> Option<Limits> {
    let read = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse().ok();
    Some(Limits {
        max_instances: read(INSTANCES)?,
        max_watches: read(WATCHES)?,
        instances_in_use: instances_in_use(Path::new("/proc")),
    })
}

/// Inotify instances open in root's processes under `proc`: only those
/// count against the limit the nodes of a rootful engine share.
fn instances_in_use(proc: &Path) -> u64 {
    let Ok(processes) = std::fs::read_dir(proc) else {
        return 0;
    };
    processes
        .flatten()
        .filter(|p| p.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| owned_by_root(&p.path()))
        .filter_map(|p| std::fs::read_dir(p.path().join("fd")).ok())
        .flat_map(|fds| fds.flatten())
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == "anon_inode:inotify"))
        .count() as u64
}

#[cfg(unix)]
fn owned_by_root(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).is_ok_and(|m| m.uid() == 0)
}

#[cfg(not(unix))]
fn owned_by_root(_: &Path) -> bool {
    false
}

/// Makes sure `nodes` more nodes fit: as root, raises the limits (they go
/// back at reboot) and returns what it did, to be said; otherwise fails
/// with the commands that raise them. Reading every process's descriptors
/// takes a while on a busy machine, so it runs off the async workers.
pub(crate) async fn ensure_room(nodes: u32) -> Result<Option<String>> {
    tokio::task::spawn_blocking(move || ensure_room_now(nodes))
        .await
        .map_err(|e| Error::Other(format!("checking inotify limits failed: {e}")))?
}

fn ensure_room_now(nodes: u32) -> Result<Option<String>> {
    let Some(limits) = limits() else {
        return Ok(None);
    };
    let Verdict::Raise { instances, watches } = verdict(limits, nodes) else {
        return Ok(None);
    };
    let commands = format!("sysctl -w fs.inotify.max_user_instances={instances} fs.inotify.max_user_watches={watches}");
    if !crate::host::is_root() {
        return Err(Error::HostLimit(format!(
            "{nodes} more nodes need about {} inotify instances and {} watches, more than this machine allows ({} and {}, {} in use); as root, run: {commands}",
            limits.instances_in_use + u64::from(nodes) * INSTANCES_PER_NODE + HEADROOM,
            u64::from(nodes) * WATCHES_PER_NODE,
            limits.max_instances,
            limits.max_watches,
            limits.instances_in_use,
        )));
    }
    for (path, value) in [(INSTANCES, instances), (WATCHES, watches)] {
        std::fs::write(path, value.to_string()).map_err(|e| {
            Error::HostLimit(format!(
                "cannot raise {path} to {value} ({e}): as root, run: {commands}"
            ))
        })?;
    }
    Ok(Some(format!(
        "raised fs.inotify.max_user_instances from {} to {instances} and max_user_watches from {} to {watches} for {nodes} nodes (until the next reboot)",
        limits.max_instances, limits.max_watches
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Limits = Limits {
        max_instances: 128,
        max_watches: 192_530,
        instances_in_use: 10,
    };

    #[test]
    fn small_clusters_fit_the_defaults() {
        assert_eq!(verdict(DEFAULTS, 4), Verdict::Enough);
        assert_eq!(verdict(DEFAULTS, 60), Verdict::Enough);
    }

    #[test]
    fn a_hundred_nodes_need_more_instances() {
        assert_eq!(
            verdict(DEFAULTS, 101),
            Verdict::Raise {
                instances: 256,
                watches: 192_530
            }
        );
        let busy = Limits {
            instances_in_use: 120,
            ..DEFAULTS
        };
        assert_eq!(
            verdict(busy, 4),
            Verdict::Raise {
                instances: 256,
                watches: 192_530
            },
            "what the host uses counts"
        );
        let few_watches = Limits {
            max_watches: 8192,
            ..DEFAULTS
        };
        assert_eq!(
            verdict(few_watches, 40),
            Verdict::Raise {
                instances: 128,
                watches: 40 * WATCHES_PER_NODE
            }
        );
    }

    #[test]
    fn this_machine_says_its_limits() {
        let limits = limits().expect("Linux says");
        assert!(limits.max_instances > 0 && limits.max_watches > 0);
        assert_eq!(instances_in_use(Path::new("/nonexistent")), 0);
    }
}
