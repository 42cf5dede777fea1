//! The errors a user can meet, each with its own exit code.
//!
//! Every message is one line that says what went wrong and what to do next;
//! the CLI prints it once and exits with [`Error::exit_code`].

use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Docker engine answers at {address} ({reason}); {hint}")]
    EngineUnreachable {
        address: String,
        reason: String,
        hint: String,
    },

    #[error("{0}")]
    InvalidInput(String),

    #[error("cluster {0:?} already exists: delete it first (swarmlab delete --name {0}) or choose another --name")]
    ClusterExists(String),

    #[error("no cluster named {0:?}: `swarmlab ls` lists the clusters")]
    ClusterNotFound(String),

    /// Something of someone else's bears a name swarmlab would use.
    #[error("a {kind} named {name} exists already ({whose}); swarmlab leaves it alone: {fix}")]
    NameTaken {
        kind: &'static str,
        name: String,
        whose: String,
        fix: String,
    },

    /// No manager of the cluster runs, or none answers.
    #[error("no manager of cluster {cluster} {state}: {hint}")]
    NoManager {
        cluster: String,
        state: String,
        hint: String,
    },

    /// The managers that run cannot elect a leader: too few of them are up
    /// or reach each other.
    #[error(
        "quorum lost in cluster {cluster}: {} and the swarm has no leader; bring managers back (`swarmlab node start NODE`, `swarmlab node heal NODE`), or if they are gone for good, `swarmlab recover --name {cluster}` makes a new swarm of a survivor that keeps the services",
        managers_up(*.up, *.managers)
    )]
    QuorumLost {
        cluster: String,
        up: usize,
        managers: usize,
    },

    #[error(
        "the TLS certificates of cluster {cluster:?} are missing from {dir}: swarmlab cannot reach its nodes; delete the cluster and create it again"
    )]
    TlsMissing { cluster: String, dir: String },

    /// A tool or a privilege the operation needs is not there.
    #[error("{0}")]
    Prerequisite(String),

    #[error("{0}")]
    NodeImageMissing(String),

    #[error(
        "no free subnet left in {pool} for a cluster network: delete a cluster or set SWARMLAB_SUBNET_POOL to a larger private range (e.g. 172.28.0.0/14)"
    )]
    SubnetExhausted { pool: String },

    #[error("{0}")]
    PortUnavailable(String),

    /// A limit of the host's kernel is too low for what was asked.
    #[error("{0}")]
    HostLimit(String),

    #[error("timed out after {} waiting for {what}; {hint}", humantime::format_duration(*.after))]
    Timeout {
        what: String,
        after: Duration,
        hint: String,
    },

    #[error("node {node} failed: {reason}")]
    NodeFailed { node: String, reason: String },

    #[error("interrupted")]
    Interrupted,

    #[error("{context}: {}", engine_message(.source))]
    Engine {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Exit codes, documented in README.md. 2 matches what clap uses for usage errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidInput(_) => 2,
            Error::ClusterNotFound(_) => 3,
            Error::ClusterExists(_) | Error::NameTaken { .. } => 4,
            Error::EngineUnreachable { .. } => 5,
            Error::NodeImageMissing(_) => 6,
            Error::SubnetExhausted { .. } | Error::PortUnavailable(_) | Error::HostLimit(_) => 7,
            Error::Timeout { .. } => 8,
            Error::Prerequisite(_) => 9,
            Error::Interrupted => 130,
            Error::NodeFailed { .. }
            | Error::NoManager { .. }
            | Error::QuorumLost { .. }
            | Error::TlsMissing { .. }
            | Error::Engine { .. }
            | Error::Io { .. }
            | Error::Other(_) => 1,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }
}

/// How many managers are up. A majority up and still no leader means they
/// do not reach each other (cut off): "2 of 3 up" alone would puzzle.
fn managers_up(up: usize, managers: usize) -> String {
    if up > managers / 2 {
        format!("{up} of {managers} managers up but cut off from each other")
    } else {
        format!("{up} of {managers} managers up")
    }
}

/// Whether a manager's refusal means the swarm has no leader (its quorum
/// is lost), as swarmkit words it.
pub(crate) fn means_no_leader(message: &str) -> bool {
    message.contains("does not have a leader") || message.contains("too few managers are online")
}

/// The part of a bollard error a user can act on: the engine's own message
/// rather than the Rust debug form.
pub(crate) fn engine_message(error: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    let text = match error {
        E::DockerResponseServerError { message, .. } => message.clone(),
        E::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    };
    one_line(&text)
}

/// Collapses whitespace so that every message printed stays on one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Adds a sentence of context to engine and I/O errors, as anyhow's `context` does.
pub(crate) trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, bollard::errors::Error> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Engine {
            context: context.into(),
            source,
        })
    }
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Engine {
            context: context().into(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context.into(),
            source,
        })
    }
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context().into(),
            source,
        })
    }
}

/// True when the engine answered 404 (no such container, network, volume...).
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
    )
}

/// True when the engine answered 409 (name already in use, conflict).
pub(crate) fn is_conflict(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_exit_code() {
        let taken = Error::NameTaken {
            kind: "volume",
            name: "lab-worker-1".into(),
            whose: "not swarmlab's".into(),
            fix: "remove it".into(),
        };
        assert_eq!(taken.exit_code(), 4);
        assert_eq!(
            taken.to_string(),
            "a volume named lab-worker-1 exists already (not swarmlab's); swarmlab leaves it alone: remove it"
        );
        assert_eq!(Error::invalid("x").exit_code(), 2);
        assert_eq!(Error::ClusterNotFound("lab".into()).exit_code(), 3);
        assert_eq!(Error::HostLimit("x".into()).exit_code(), 7);
        assert_eq!(Error::Prerequisite("x".into()).exit_code(), 9);
        assert_eq!(Error::Interrupted.exit_code(), 130);
        let no_manager = Error::NoManager {
            cluster: "lab".into(),
            state: "is running".into(),
            hint: "start it".into(),
        };
        assert_eq!(no_manager.exit_code(), 1);
        assert!(!no_manager.to_string().contains('\n'));
    }

    #[test]
    fn a_lost_quorum_with_a_majority_up_says_they_are_cut_off() {
        let lost = |up| {
            Error::QuorumLost {
                cluster: "lab".into(),
                up,
                managers: 3,
            }
            .to_string()
        };
        assert!(lost(1).starts_with("quorum lost in cluster lab: 1 of 3 managers up and the swarm has no leader"));
        assert!(lost(3).contains("3 of 3 managers up but cut off from each other"));
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n  b\n\nc"), "a b c");
    }
}
