//! Whether node containers run `--privileged`, and the profile that stands
//! in where the engine refuses it.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// How a node container runs, as its `io.swarmlab.security` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeSecurity {
    /// `--privileged`.
    Privileged,
    /// The explicit capability profile, where the engine refuses --privileged.
    Capabilities,
}

impl NodeSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeSecurity::Privileged => "privileged",
            NodeSecurity::Capabilities => "capabilities",
        }
    }

    pub(crate) fn from_label(value: &str) -> Option<Self> {
        [NodeSecurity::Privileged, NodeSecurity::Capabilities]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// `auto` (the default), `try` or `no`: see `Security::guess`.
pub(crate) const PRIVILEGED_ENV: &str = "SWARMLAB_PRIVILEGED";

/// What `SWARMLAB_PRIVILEGED` asks for: try --privileged (Some(true)),
/// never (Some(false)), or let the engine's bounding set decide (None).
pub(crate) fn privileged_choice() -> Result<Option<bool>> {
    match std::env::var(PRIVILEGED_ENV).unwrap_or_default().as_str() {
        "" | "auto" => Ok(None),
        "try" => Ok(Some(true)),
        "no" => Ok(Some(false)),
        other => Err(Error::invalid(format!(
            "{PRIVILEGED_ENV}={other} is not understood: use auto, try or no"
        ))),
    }
}

/// Whether node containers run `--privileged`, shared by the nodes of one
/// operation: the first node that finds it refused spares the others the try.
/// The same for the capability profile's one dropped capability.
#[derive(Debug)]
pub(crate) struct Security {
    privileged_refused: AtomicBool,
    cap_drop_refused: AtomicBool,
    /// Not asked for, by choice rather than because the engine refuses it.
    declined: bool,
}

impl Security {
    /// Starts from what the host engine most likely allows. Where runc may
    /// not grant every capability (see ../shared/ENVIRONMENT.md), a
    /// privileged container cannot start; the capability bounding set of
    /// the local engine's process tells that in advance.
    ///
    /// `SWARMLAB_PRIVILEGED` overrides the guess: `try` asks for
    /// --privileged whatever the bounding set says (and still falls back
    /// when refused), `no` never asks for it.
    /// A rootless engine grants --privileged within its user namespace,
    /// whatever this machine's bounding set says.
    pub(crate) fn guess(facts: &crate::engine::EngineFacts) -> Result<Self> {
        let (refused, declined) = match privileged_choice()? {
            Some(true) => (false, false),
            Some(false) => (true, true),
            None => (facts.here && !facts.rootless && !full_bounding_set(), false),
        };
        Ok(Security {
            privileged_refused: AtomicBool::new(refused),
            cap_drop_refused: AtomicBool::new(false),
            declined,
        })
    }

    /// For one node made anew as privileged as its old container was.
    pub(super) fn as_was(privileged: bool) -> Self {
        Security {
            privileged_refused: AtomicBool::new(!privileged),
            cap_drop_refused: AtomicBool::new(false),
            declined: false,
        }
    }

    pub(super) fn privileged(&self) -> bool {
        !self.privileged_refused.load(Ordering::Relaxed)
    }

    pub(super) fn refuse_privileged(&self) {
        self.privileged_refused.store(true, Ordering::Relaxed);
    }

    /// Whether the profile goes without its `cap_drop` (see `ops::create`).
    pub(super) fn cap_drop_refused(&self) -> bool {
        self.cap_drop_refused.load(Ordering::Relaxed)
    }

    pub(super) fn refuse_cap_drop(&self) {
        self.cap_drop_refused.store(true, Ordering::Relaxed);
    }

    /// How the last node was run, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        if self.privileged() {
            "run privileged"
        } else if self.declined {
            "run with explicit capabilities (SWARMLAB_PRIVILEGED=no)"
        } else {
            "run with explicit capabilities (the engine refuses --privileged)"
        }
    }
}

/// Reads the engine's capability bounding set (falling back to our own) and
/// compares it with every capability the kernel knows.
fn full_bounding_set() -> bool {
    let read_bounding = |pid: &str| -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("CapBnd:"))?;
        u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
    };
    let engine_pid = std::fs::read_to_string("/var/run/docker.pid").ok();
    let bounding = engine_pid
        .as_deref()
        .and_then(|pid| read_bounding(pid.trim()))
        .or_else(|| read_bounding("self"));
    let last_cap: Option<u32> = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    match (bounding, last_cap) {
        (Some(bounding), Some(last)) if last < 64 => {
            let all = if last == 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 };
            bounding & all == all
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_security_label_reads_back() {
        for security in [NodeSecurity::Privileged, NodeSecurity::Capabilities] {
            assert_eq!(NodeSecurity::from_label(security.as_str()), Some(security));
            assert_eq!(serde_json::to_value(security).unwrap(), security.as_str());
        }
        assert_eq!(NodeSecurity::from_label("root"), None);
    }
}
