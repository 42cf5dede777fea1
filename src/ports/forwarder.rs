//! The forwarder's loop: read the swarm, open and close listeners on
//! 127.0.0.1 to match the published ports, forward connections, write the
//! status file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::engine::HostEngine;
use crate::error::{Context, Result};
use crate::naming::ClusterName;

use super::discovery::{Backend, Discovery, Route, Target};
use super::{ForwarderStatus, PortStatus, netns};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many backends a connection tries before it is given up.
const ATTEMPTS: usize = 3;

type Backends = Arc<RwLock<Arc<Vec<Backend>>>>;

struct Listening {
    backends: Backends,
    accepting: JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Forwards the cluster's published ports until `stop` resolves, polling
/// the swarm every `interval`.
pub async fn serve(
    engine: HostEngine,
    name: ClusterName,
    status_path: &Path,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    let mut discovery = Discovery::new(engine, name.clone());
    let mut listening: HashMap<u16, Listening> = HashMap::new();
    // The last message logged for each port, so that a state is logged once.
    let mut said: HashMap<u16, String> = HashMap::new();
    let mut status = ForwarderStatus::default();
    // Until the swarm has answered once, failures are the start-up, not news.
    let mut read_once = false;
    log(&format!(
        "forwarding the published ports of cluster {name} to 127.0.0.1"
    ));
    loop {
        match discovery.routes().await {
            Ok((ipvs, routes)) => {
                if ipvs != status.ipvs || !read_once {
                    log(if ipvs {
                        "the kernel has IPVS: connections go through Swarm's routing mesh"
                    } else {
                        "the kernel has no IPVS (no routing mesh): connections go to the tasks directly"
                    });
                }
                status.ipvs = ipvs;
                status.error.clear();
                status.ports = reconcile(&routes, &mut listening, &mut said);
                read_once = true;
            }
            Err(error) => {
                let message = error.to_string();
                if status.error != message {
                    log(&format!(
                        "cannot read the swarm: {message}; keeping the last known backends"
                    ));
                }
                status.error = message;
            }
        }
        status.updated = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        write_status(status_path, &status)?;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut stop => break,
        }
    }
    log("stopping");
    Ok(())
}

/// Opens, updates and closes listeners to match `routes`; returns each
/// route's state.
fn reconcile(
    routes: &[Route],
    listening: &mut HashMap<u16, Listening>,
    said: &mut HashMap<u16, String>,
) -> Vec<PortStatus> {
    listening.retain(|port, _| {
        let keep = routes.iter().any(|r| r.published == *port);
        if !keep {
            log(&format!("127.0.0.1:{port} closed: no longer published"));
            said.remove(port);
        }
        keep
    });
    let mut statuses = Vec::new();
    for route in routes {
        let port = route.published;
        let backends = Arc::new(route.backends.clone());
        if let Some(existing) = listening.get(&port) {
            *existing.backends.write().expect("backends lock") = backends;
        } else {
            match std::net::TcpListener::bind(("127.0.0.1", port)).and_then(|l| {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)
            }) {
                Ok(listener) => {
                    let shared: Backends = Arc::new(RwLock::new(backends));
                    let accepting = tokio::spawn(accept(listener, shared.clone()));
                    listening.insert(
                        port,
                        Listening {
                            backends: shared,
                            accepting,
                        },
                    );
                }
                Err(error) => {
                    let message = if error.kind() == std::io::ErrorKind::AddrInUse {
                        format!(
                            "127.0.0.1:{port} is already in use on the host: {} cannot be reached there; free the port or publish another one (the other ports keep working)",
                            route.service
                        )
                    } else {
                        format!("cannot listen on 127.0.0.1:{port}: {error}")
                    };
                    tell(said, port, &message);
                    statuses.push(route.status("port-taken", &message));
                    continue;
                }
            }
        }
        let (state, message) = if route.backends.is_empty() {
            (
                "no-backends",
                format!("{} has no running task to forward to yet", route.service),
            )
        } else {
            (
                "forwarding",
                format!(
                    "127.0.0.1:{port} -> {} ({}, {} task{})",
                    route.service,
                    route.path,
                    route.backends.len(),
                    if route.backends.len() == 1 { "" } else { "s" }
                ),
            )
        };
        tell(said, port, &message);
        statuses.push(route.status(state, &message));
    }
    statuses
}

async fn accept(listener: TcpListener, backends: Backends) {
    let turn = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((inbound, _peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let backends = backends.read().expect("backends lock").clone();
        let first = turn.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(forward(inbound, backends, first));
    }
}

/// Connects to the next backend in turn (trying a few on failure) and
/// copies bytes both ways until either side closes.
async fn forward(mut inbound: TcpStream, backends: Arc<Vec<Backend>>, first: usize) {
    for attempt in 0..ATTEMPTS.min(backends.len()) {
        let backend = &backends[(first + attempt) % backends.len()];
        match connect(&backend.target).await {
            Ok(mut outbound) => {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                return;
            }
            Err(error) => log(&format!(
                "{} on {} ({}) did not answer: {error}",
                backend.status.task, backend.status.node, backend.status.address
            )),
        }
    }
}

async fn connect(target: &Target) -> std::io::Result<TcpStream> {
    match target {
        Target::Direct(address) => tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
        Target::InNode { pid, address } => {
            let stream = netns::connect_in(*pid, *address, CONNECT_TIMEOUT).await?;
            stream.set_nonblocking(true)?;
            TcpStream::from_std(stream)
        }
    }
}

fn tell(said: &mut HashMap<u16, String>, port: u16, message: &str) {
    if said.get(&port).map(String::as_str) != Some(message) {
        log(message);
        said.insert(port, message.to_string());
    }
}

fn write_status(path: &Path, status: &ForwarderStatus) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_vec_pretty(status).expect("status serializes");
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

fn log(message: &str) {
    println!("{message}");
}
