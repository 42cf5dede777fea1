//! The kernel's neighbour (ARP) table against the size of a cluster.
//!
//! One table holds the entries of every network namespace, and each node's
//! namespaces learn the others' addresses: measured, a 1+30 cluster holds
//! 1171 entries (/proc/net/stat/arp_cache), about 1.2 per pair of nodes.
//! Past `gc_thresh3` (1024 by default) the kernel refuses new entries
//! ("neighbor table overflow"), and at a hundred nodes engines stop being
//! reachable in the middle of a create. Raised before the nodes are made.

use crate::error::Result;

const THRESHOLDS: [&str; 3] = [
    "/proc/sys/net/ipv4/neigh/default/gc_thresh1",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh2",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
];

/// Entries `nodes` nodes may hold, with room for the host's own.
pub(crate) fn needed(nodes: u64) -> u64 {
    nodes * nodes * 5 / 4 + 256
}

/// The thresholds (soft minimum, soft maximum, hard maximum) that leave
/// room for `needed` entries, or None when `current` does.
pub(crate) fn raised(current: [u64; 3], needed: u64) -> Option<[u64; 3]> {
    if current[2] >= needed {
        return None;
    }
    let room = needed.next_power_of_two();
    Some([current[0].max(room / 4), current[1].max(room), current[2].max(room * 2)])
}

/// Makes room for a cluster of `nodes` nodes: as root, raises the
/// thresholds (until the next reboot) and returns what it did; otherwise
/// returns the command to run, as advice (smaller clusters than this
/// measure fit anyway, as the kernel collects stale entries).
pub(crate) async fn ensure_room(nodes: u32) -> Result<Option<String>> {
    tokio::task::spawn_blocking(move || {
        let read = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse::<u64>().ok();
        let (Some(a), Some(b), Some(c)) = (read(THRESHOLDS[0]), read(THRESHOLDS[1]), read(THRESHOLDS[2])) else {
            return None;
        };
        let wanted = raised([a, b, c], needed(u64::from(nodes)))?;
        let command = format!(
            "sysctl -w net.ipv4.neigh.default.gc_thresh1={} net.ipv4.neigh.default.gc_thresh2={} net.ipv4.neigh.default.gc_thresh3={}",
            wanted[0], wanted[1], wanted[2]
        );
        // The hard maximum first, so that the three stay in order.
        let written = crate::host::is_root()
            && [2, 1, 0]
                .into_iter()
                .all(|i| std::fs::write(THRESHOLDS[i], wanted[i].to_string()).is_ok());
        Some(if written {
            format!("raised the kernel's neighbour table to {} entries for {nodes} nodes (until the next reboot)", wanted[2])
        } else {
            format!("{nodes} nodes may overflow the kernel's neighbour table ({c} entries): if nodes stop answering, as root run: {command}")
        })
    })
    .await
    .map_err(|e| crate::error::Error::Other(format!("checking the neighbour table failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_grows_with_pairs_of_nodes_and_is_only_ever_raised() {
        let defaults = [128, 512, 1024];
        assert_eq!(raised(defaults, needed(4)), None, "small clusters fit");
        assert_eq!(raised(defaults, needed(20)), None);
        let hundred = raised(defaults, needed(101)).unwrap();
        assert!(
            hundred[2] >= needed(101) && hundred[0] < hundred[1] && hundred[1] < hundred[2],
            "{hundred:?}"
        );
        assert_eq!(raised([128, 512, 1 << 20], needed(101)), None, "never lowered");
    }
}
