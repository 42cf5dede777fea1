//! Finding a manager whose engine answers: managers electing a leader are
//! waited for, and, for commands that act, so are managers that are only
//! slow to answer.

use std::time::Duration;

use bollard::Docker;
use tokio::time::Instant;

use super::{Cluster, NodeContainer};
use crate::error::{self, Context, Error, Result};
use crate::naming::Role;

/// How long a majority of managers without a leader is given to elect one
/// (swarmkit: up to 20 one-second ticks without a heartbeat, then a vote).
const ELECTION_WAIT: Duration = Duration::from_secs(25);

/// How long managers that are all silent (neither answering nor refusing)
/// are asked again before none counts as answering: on a host loaded to
/// the brim (a build beside it, an emulated machine) an engine stalls for
/// seconds, and a command should not fail for that.
const SILENT_WAIT: Duration = Duration::from_secs(30);

/// How long one manager is given to answer on a first look (most answer in
/// milliseconds, and a dead one should not hold up the next), then on the
/// looks after one in which every manager was silent.
const FIRST_PATIENCE: Duration = Duration::from_secs(3);
const LATER_PATIENCE: Duration = Duration::from_secs(10);

/// What one look over the managers found.
enum Scan<'a> {
    Found(&'a NodeContainer, Docker),
    /// This many engines answered, but their swarm has no leader.
    Leaderless(usize),
    /// None answered as a manager; why, by node. `all_silent`: managers
    /// were silent, and no node refused or failed otherwise.
    Failed {
        reasons: Vec<String>,
        all_silent: bool,
    },
}

/// Why one engine did not serve as a manager.
enum Miss {
    /// It answers, but the swarm has no leader to list nodes.
    Leaderless,
    /// It said nothing within the time given.
    Silent(String),
    /// It answers as a worker (one named manager-N may have been demoted).
    Worker(String),
    Failed(Error),
}

impl Cluster {
    /// The first manager whose engine answers, and a client for it.
    pub(crate) async fn any_manager(&self) -> Result<(&NodeContainer, Docker)> {
        self.any_manager_but("").await
    }

    /// The first manager other than `hostname` whose engine answers. A
    /// majority of managers that answer without a leader are most likely
    /// electing one (a leader just crashed: swarmkit's followers notice
    /// after about ten seconds, then vote), so they are asked again for a
    /// while before that counts as a lost quorum; managers that all stay
    /// silent are asked again, each given longer, for a while too.
    pub(crate) async fn any_manager_but(&self, hostname: &str) -> Result<(&NodeContainer, Docker)> {
        self.find_manager(hostname, SILENT_WAIT).await
    }

    /// As [`Cluster::any_manager_but`], but managers that are all silent
    /// fail the first look: for what looks again by itself every few
    /// moments (viz, top, the forwarder, ls, inspect, a wait's or an
    /// upgrade's polling), where a look held up for half a minute would freeze what
    /// it shows or overrun its own deadline.
    pub(crate) async fn manager_at_a_glance(&self, hostname: &str) -> Result<(&NodeContainer, Docker)> {
        self.find_manager(hostname, Duration::ZERO).await
    }

    async fn find_manager(&self, hostname: &str, silence: Duration) -> Result<(&NodeContainer, Docker)> {
        let managers = self.nodes.iter().filter(|n| n.node.role == Role::Manager).count();
        let silent_until = Instant::now() + silence;
        let mut election_until = None;
        let mut patience = FIRST_PATIENCE;
        loop {
            // Looks after the first end with the time given to silence.
            let until = (patience != FIRST_PATIENCE).then_some(silent_until);
            match self.scan_managers(hostname, patience, until).await {
                Scan::Found(node, docker) => return Ok((node, docker)),
                Scan::Leaderless(up) => {
                    // The election is timed from when it was first seen.
                    patience = FIRST_PATIENCE;
                    let until = *election_until.get_or_insert_with(|| Instant::now() + ELECTION_WAIT);
                    if up <= managers / 2 || Instant::now() >= until {
                        return Err(Error::QuorumLost {
                            cluster: self.name.to_string(),
                            up: up.min(managers),
                            managers,
                        });
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                // Another look only with time for one: a look that asked no
                // one would find no reason to give.
                Scan::Failed { all_silent: true, .. }
                    if silent_until.saturating_duration_since(Instant::now()) >= Duration::from_secs(1) =>
                {
                    patience = LATER_PATIENCE
                }
                Scan::Failed { reasons, .. } => return Err(self.no_manager(reasons)),
            }
        }
    }

    /// One look over the running nodes other than `hostname`, managers by
    /// name first (nodes named worker-N may have been promoted), each given
    /// `patience`, and none asked past `until`.
    async fn scan_managers(&self, hostname: &str, patience: Duration, until: Option<Instant>) -> Scan<'_> {
        let mut reasons = Vec::new();
        let (mut silent, mut failed, mut leaderless) = (0, 0, 0);
        let mut candidates: Vec<&NodeContainer> = self.nodes.iter().filter(|n| n.node.hostname() != hostname).collect();
        candidates.sort_by_key(|n| n.node.role != Role::Manager);
        for node in candidates.into_iter().filter(|n| n.running) {
            // Workers are asked only in case one was promoted: no longer
            // on later looks than on the first.
            let patience = match node.node.role {
                Role::Manager => patience,
                Role::Worker => patience.min(FIRST_PATIENCE),
            };
            let patience = match until {
                Some(until) => patience.min(until.saturating_duration_since(Instant::now())),
                None => patience,
            };
            if patience.is_zero() {
                break;
            }
            match self.ask_manager(node, patience).await {
                Ok(docker) => return Scan::Found(node, docker),
                Err(Miss::Leaderless) => leaderless += 1,
                Err(Miss::Silent(what)) => {
                    // A silent worker is no reason to wait: it is a manager
                    // only if it was promoted.
                    silent += usize::from(node.node.role == Role::Manager);
                    reasons.push(format!("{}: {what}", node.node));
                }
                Err(Miss::Worker(what)) => reasons.push(format!("{}: {what}", node.node)),
                Err(Miss::Failed(e)) => {
                    failed += 1;
                    reasons.push(format!("{}: {e}", node.node));
                }
            }
        }
        if leaderless > 0 {
            return Scan::Leaderless(leaderless);
        }
        Scan::Failed {
            all_silent: silent > 0 && failed == 0,
            reasons,
        }
    }

    /// A client for `node` if its engine answers and can list the swarm's
    /// nodes (which only a manager of a swarm with a leader can).
    async fn ask_manager(&self, node: &NodeContainer, patience: Duration) -> std::result::Result<Docker, Miss> {
        let seconds = patience.as_secs_f64().ceil();
        // One time for both requests: a node is never asked for longer.
        let until = Instant::now() + patience;
        let docker = self.node_engine(node).map_err(Miss::Failed)?;
        let docker = tokio::time::timeout_at(until, docker.negotiate_version())
            .await
            .map_err(|_| Miss::Silent(format!("no answer within {seconds}s")))?
            .context("no answer")
            .map_err(Miss::Failed)?;
        match tokio::time::timeout_at(until, docker.list_nodes(None)).await {
            Err(_) => Err(Miss::Silent(format!("no node list within {seconds}s"))),
            Ok(Ok(_)) => Ok(docker),
            Ok(Err(e)) => {
                let message = error::engine_message(&e);
                if error::means_no_leader(&message) {
                    Err(Miss::Leaderless)
                } else if message.contains("not a swarm manager") {
                    Err(Miss::Worker(format!("cannot list nodes: {message}")))
                } else {
                    Err(Miss::Failed(Error::Other(format!("cannot list nodes: {message}"))))
                }
            }
        }
    }

    fn no_manager(&self, reasons: Vec<String>) -> Error {
        if reasons.is_empty() {
            return Error::NoManager {
                cluster: self.name.to_string(),
                state: "is running".into(),
                hint: format!("`swarmlab start --name {}` starts a stopped cluster", self.name),
            };
        }
        Error::NoManager {
            cluster: self.name.to_string(),
            state: format!("answers ({})", reasons.join("; ")),
            hint: format!("`swarmlab inspect --name {}` shows its nodes", self.name),
        }
    }
}
