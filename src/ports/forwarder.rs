//! The forwarder's loop: read the swarm, open and close listeners on
//! 127.0.0.1 to match the published ports, forward connections, write the
//! status file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::engine::HostEngine;
use crate::error::{Context, Result};
use crate::naming::ClusterName;

use super::discovery::{Backend, Discovery, Route, Target};
use crate::forwarder_container::{ForwarderStatus, PortState, PortStatus};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many backends a connection tries before it is given up.
const ATTEMPTS: usize = 3;
/// Bytes read at a time, each way, per connection.
const CHUNK: usize = 8 * 1024;

/// How much the forwarder takes on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How often the swarm is read.
    pub interval: Duration,
    /// Connections forwarded at once, over every port; beyond it new ones
    /// are closed at once, and the log says so.
    pub max_connections: usize,
    /// A connection with no byte either way for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            interval: Duration::from_secs(1),
            max_connections: 1024,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// What every listener shares: the limits, the connection slots, and
/// whether the cap was reached (so that it is logged once, not per refusal).
struct Gate {
    limits: Limits,
    slots: Arc<Semaphore>,
    full: AtomicBool,
}

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

/// Forwards the cluster's published ports until `stop` resolves.
pub async fn serve(
    engine: HostEngine,
    name: ClusterName,
    status_path: &Path,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    let gate = Arc::new(Gate {
        limits,
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        full: AtomicBool::new(false),
    });
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
                status.ports = reconcile(&routes, &mut listening, &mut said, &gate);
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
            () = tokio::time::sleep(limits.interval) => {}
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
    gate: &Arc<Gate>,
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
                    let accepting = tokio::spawn(accept(listener, shared.clone(), gate.clone()));
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
                    statuses.push(route.status(PortState::PortTaken, &message));
                    continue;
                }
            }
        }
        let (state, message) = if route.backends.is_empty() {
            (
                PortState::NoBackends,
                format!("{} has no running task to forward to yet", route.service),
            )
        } else {
            (
                PortState::Forwarding,
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

async fn accept(listener: TcpListener, backends: Backends, gate: Arc<Gate>) {
    let turn = Arc::new(AtomicUsize::new(0));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    loop {
        let Ok((inbound, _peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = gate.slots.clone().try_acquire_owned() else {
            if !gate.full.swap(true, Ordering::Relaxed) {
                log(&format!(
                    "{} connections are open, the forwarder's cap: new ones (first on 127.0.0.1:{port}) are closed at once until some end",
                    gate.limits.max_connections
                ));
            }
            drop(inbound);
            continue;
        };
        if gate.full.swap(false, Ordering::Relaxed) {
            log("below the cap of connections again: new ones are forwarded");
        }
        let backends = backends.read().expect("backends lock").clone();
        let first = turn.fetch_add(1, Ordering::Relaxed);
        let idle = gate.limits.idle_timeout;
        tokio::spawn(async move {
            forward(inbound, backends, first, idle).await;
            drop(slot);
        });
    }
}

/// Connects to the next backend in turn (trying a few on failure) and
/// relays bytes both ways until both sides close, or nothing moves for
/// `idle`.
async fn forward(inbound: TcpStream, backends: Arc<Vec<Backend>>, first: usize, idle: Duration) {
    for attempt in 0..ATTEMPTS.min(backends.len()) {
        let backend = &backends[(first + attempt) % backends.len()];
        match connect(&backend.target).await {
            Ok(outbound) => {
                relay(inbound, outbound, idle).await;
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
        Target::InNode { namespace, address } => namespace.connect(*address, CONNECT_TIMEOUT).await,
    }
}

/// Copies bytes both ways; a side that ends its sending is passed on as
/// such (half-close), and the connection ends when both have, on an error,
/// or when nothing has moved either way for `idle`.
async fn relay(mut a: TcpStream, mut b: TcpStream, idle: Duration) {
    let (mut a_read, mut a_write) = a.split();
    let (mut b_read, mut b_write) = b.split();
    let (mut from_a, mut from_b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            read = a_read.read(&mut from_a), if a_open => match read {
                Ok(0) => {
                    a_open = false;
                    let _ = b_write.shutdown().await;
                }
                Ok(n) => if b_write.write_all(&from_a[..n]).await.is_err() { return },
                Err(_) => return,
            },
            read = b_read.read(&mut from_b), if b_open => match read {
                Ok(0) => {
                    b_open = false;
                    let _ = a_write.shutdown().await;
                }
                Ok(n) => if a_write.write_all(&from_b[..n]).await.is_err() { return },
                Err(_) => return,
            },
            () = tokio::time::sleep(idle) => return,
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
