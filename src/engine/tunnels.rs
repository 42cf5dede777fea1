//! Tunnels for an ssh:// engine on another machine. The ports it publishes
//! on its own 127.0.0.1 (the nodes' APIs, the forwarder's service ports)
//! are brought to this machine's 127.0.0.1, under the same number, for as
//! long as they are published: what Docker Desktop does for its VM, so
//! that the rest of swarmlab, and the docker CLI at a cluster, work alike.
//!
//! One process a user and engine (a lock file says which) follows the
//! engine's events and holds one ssh connection, adding and cancelling
//! forwards through its control socket. Where ssh has no control sockets
//! (Windows), each port gets an ssh of its own.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::PortSummaryTypeEnum;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::HostEngine;
use super::forwards::{self, Tunnels};
use super::ssh::{self, SshTarget};
use crate::error::{Error, Result};
use crate::labels;

/// How long a tunnels process waits for the engine's first swarmlab
/// container: the create that started it makes one within seconds.
const FIRST_WAIT: Duration = Duration::from_secs(60);
/// How often it looks besides the events, which a broken stream may lose.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// How long the engine may not answer before the tunnels end.
const UNANSWERED_FOR: Duration = Duration::from_secs(60);
/// How long one look at the engine may take: a stalled connection must not
/// hold the tunnels (and a stop) for the engine client's ten minutes.
const LIST_WAIT: Duration = Duration::from_secs(10);
/// A command started this recently (it touched the lock file) may be about
/// to make a container: the tunnels stay for it, even with none left (a
/// delete, then a create).
const STARTED_RECENTLY: Duration = Duration::from_secs(10);

/// The file a tunnels process for the engine at `host` writes its lines
/// to; None where the engine is not ssh://.
pub fn log_file(host: &str) -> Option<PathBuf> {
    let target = SshTarget::parse(host).ok()?;
    Some(log_of(&target))
}

fn log_of(target: &SshTarget) -> PathBuf {
    files_dir().join(format!("tunnels-{}.log", target.file_name()))
}

/// The last trouble the tunnels process for the engine at `host` had (a
/// port refused, ssh failing to log in), from its log: for the message of
/// a command that found a port missing.
pub(crate) fn last_trouble(host: &str) -> Option<String> {
    let text = std::fs::read_to_string(log_file(host)?).ok()?;
    trouble_in(&text)
}

/// The last line of a log that tells of trouble, without its time.
fn trouble_in(log: &str) -> Option<String> {
    log.lines()
        .filter_map(|line| line.split_once(' ').map(|(_, said)| said))
        .rfind(|said| said.starts_with("! ") || said.starts_with("ssh: "))
        .map(str::to_string)
}

fn files_dir() -> PathBuf {
    ssh::control_dir().unwrap_or_else(std::env::temp_dir)
}

/// Keeps the tunnels until the engine has no swarmlab container left (or
/// none came within a minute), or `stop`. Returns at once when another
/// process keeps them, or when the engine is on this machine after all.
/// `say` gets a line for every tunnel opened, closed or refused.
pub async fn follow(engine: &HostEngine, stop: CancellationToken, say: &dyn Fn(&str)) -> Result<()> {
    let target = SshTarget::parse(&engine.endpoint.host)?;
    let dir = files_dir();
    let lock_path = dir.join(format!("tunnels-{}.lock", target.file_name()));
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", lock_path.display())))?;
    // Tells the process that keeps the tunnels that a command has started.
    let _ = lock.set_modified(std::time::SystemTime::now());
    if lock.try_lock().is_err() || engine.is_local().await? {
        return Ok(());
    }
    // The log starts anew with each process that keeps the tunnels.
    if let Ok(log) = std::fs::File::options().write(true).open(log_of(&target)) {
        let _ = log.set_len(0);
    }
    let socket = ssh::control_dir().map(|dir| dir.join(forwards::socket_name(&target.file_name())));
    let mut tunnels = Tunnels::new(target, socket);
    let started = Instant::now();
    let mut seen = false;
    let events = || {
        let filters = HashMap::from([("type", vec!["container"]), ("label", vec![labels::CLUSTER])]);
        engine
            .docker
            .events(Some(EventsOptionsBuilder::new().filters(&filters).build()))
    };
    let mut changes = events();
    let mut answered = Instant::now();
    loop {
        // The engine out of reach for a moment (the network, its restart)
        // keeps the tunnels as they are; for a minute, it ends them.
        let looked = tokio::select! {
            () = stop.cancelled() => break,
            looked = tokio::time::timeout(LIST_WAIT, published(engine)) => looked.unwrap_or_else(|_| {
                Err(Error::Other(format!("the engine did not answer within {} s", LIST_WAIT.as_secs())))
            }),
        };
        match looked {
            Ok((any, wanted)) => {
                answered = Instant::now();
                seen |= any;
                if !any && (seen || started.elapsed() > FIRST_WAIT) && !started_recently(&lock) {
                    break;
                }
                tunnels.reconcile(&wanted, say).await;
            }
            Err(error) if answered.elapsed() < UNANSWERED_FOR => say(&format!("engine: {error}")),
            Err(error) => {
                tunnels.reconcile(&BTreeSet::new(), say).await;
                return Err(error);
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            change = changes.next() => {
                if !matches!(change, Some(Ok(_))) {
                    tokio::time::sleep(LOOK_EVERY).await;
                    changes = events();
                }
            }
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
    tunnels.reconcile(&BTreeSet::new(), say).await;
    drop(lock);
    Ok(())
}

/// Whether a command touched the lock file within [`STARTED_RECENTLY`].
fn started_recently(lock: &std::fs::File) -> bool {
    lock.metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|touched| touched.elapsed().is_ok_and(|age| age < STARTED_RECENTLY))
}

/// Whether the engine has any swarmlab container, and the TCP ports its
/// running ones publish on its loopback (or on every address).
async fn published(engine: &HostEngine) -> Result<(bool, BTreeSet<u16>)> {
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&labels::filter(None))
        .build();
    let containers = engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(|e| Error::Engine {
            context: "cannot list swarmlab's containers".into(),
            source: e,
        })?;
    let ports = containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.typ == Some(PortSummaryTypeEnum::TCP))
        .filter(|p| matches!(p.ip.as_deref(), Some("127.0.0.1" | "0.0.0.0")))
        .filter_map(|p| p.public_port)
        .collect();
    Ok((!containers.is_empty(), ports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_trouble_is_told_without_its_time() {
        let log = "2026-12-05T00:00:01Z + 45001\n\
                   2026-12-05T00:00:02Z ! 45002: bind [127.0.0.1]:45002: Address already in use\n\
                   2026-12-05T00:00:03Z + 45003\n";
        assert_eq!(
            trouble_in(log).as_deref(),
            Some("! 45002: bind [127.0.0.1]:45002: Address already in use")
        );
        assert_eq!(
            trouble_in("2026-12-05T00:00:01Z ssh: Permission denied (publickey).\n").as_deref(),
            Some("ssh: Permission denied (publickey).")
        );
        assert_eq!(trouble_in("2026-12-05T00:00:01Z + 45001\n"), None);
    }
}
