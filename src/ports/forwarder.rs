//! The forwarder's loop: read the swarm, open and close listeners on
//! 127.0.0.1 to match the published ports, forward connections, write the
//! status file.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::engine::HostEngine;
use crate::error::{Context, Result};
use crate::forwarder_container::Reach;
use crate::naming::ClusterName;

use super::counters::{Counters, Ledger, attempt_order};
use super::discovery::{Backend, Discovery, Route, Target};
use super::log::{log, tell};
use super::publish::Publisher;
use super::relay::relay;
use crate::forwarder_container::{ForwarderStatus, PortState, PortStatus};

/// A backend on this machine that takes a second to accept is as good as
/// gone: the next one is tried within the client's patience.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How many backends a connection tries before it is given up.
const ATTEMPTS: usize = 3;

/// How much the forwarder takes on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How often the swarm is read.
    pub interval: Duration,
    /// Connections forwarded at once, over every port; beyond it new ones
    /// are closed at once, and the log says so.
    pub max_connections: u32,
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

/// A backend as connections use it: where it is, and what it counts.
struct Live {
    backend: Backend,
    counters: Arc<Counters>,
}

type Backends = Arc<RwLock<Arc<Vec<Live>>>>;

struct Listening {
    backends: Backends,
    accepting: JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Forwards the cluster's published ports until `stop` resolves: on the
/// host's 127.0.0.1, or (`Reach::Published`) on the forwarder's own address
/// on the cluster network, each port brought to the engine's 127.0.0.1 by a
/// port container.
pub async fn serve(
    engine: HostEngine,
    name: ClusterName,
    status_path: &Path,
    limits: Limits,
    reach: Reach,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    let gate = Arc::new(Gate {
        limits,
        slots: Arc::new(Semaphore::new(limits.max_connections as usize)),
        full: AtomicBool::new(false),
    });
    let listen_on = match reach {
        Reach::Loopback => Ipv4Addr::LOCALHOST,
        Reach::Published => Ipv4Addr::UNSPECIFIED,
    };
    let publisher = match reach {
        Reach::Published => Some(Publisher::new(&engine, &name).await?),
        Reach::Loopback => None,
    };
    let host = engine.clone();
    let mut discovery = Discovery::new(engine, name.clone(), reach == Reach::Loopback);
    let mut listening: HashMap<u16, Listening> = HashMap::new();
    // The last message logged for each port, so that a state is logged once.
    let mut said: HashMap<u16, String> = HashMap::new();
    let mut status = ForwarderStatus::default();
    let mut ledger = Ledger::default();
    // Until the swarm has answered once, failures are the start-up, not news.
    let mut read_once = false;
    log(&match reach {
        Reach::Loopback => format!("forwarding the published ports of cluster {name} on the host's 127.0.0.1"),
        Reach::Published => format!(
            "forwarding the published ports of cluster {name} from the cluster network; port containers publish them on the engine's 127.0.0.1"
        ),
    });
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
                status.ports = reconcile(&routes, listen_on, &mut listening, &mut said, &gate, &mut ledger);
                if let Some(publisher) = &publisher {
                    publisher.publish(&host, &name, &mut status.ports, &mut said).await;
                }
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
    listen_on: Ipv4Addr,
    listening: &mut HashMap<u16, Listening>,
    said: &mut HashMap<u16, String>,
    gate: &Arc<Gate>,
    ledger: &mut Ledger,
) -> Vec<PortStatus> {
    ledger.keep_only(
        routes.iter().flat_map(|r| r.backends.iter().map(|b| &b.status)),
        std::time::Instant::now(),
    );
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
        let backends: Arc<Vec<Live>> = Arc::new(
            route
                .backends
                .iter()
                .map(|backend| Live {
                    backend: backend.clone(),
                    counters: ledger.counters(&backend.status),
                })
                .collect(),
        );
        if let Some(existing) = listening.get(&port) {
            *existing.backends.write().expect("backends lock") = backends;
        } else {
            match std::net::TcpListener::bind((listen_on, port)).and_then(|l| {
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
        let (state, message) = if let Some(why) = &route.blocked {
            (PortState::Blocked, why.clone())
        } else if route.backends.is_empty() {
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
        let mut status = route.status(state, &message);
        for backend in &mut status.backends {
            ledger.counters(backend).fill(backend);
        }
        statuses.push(status);
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

/// Connects to the next backend in turn (trying a few on failure, those
/// that failed just now last) and relays bytes both ways until both sides
/// close, or nothing moves for `idle`.
async fn forward(inbound: TcpStream, backends: Arc<Vec<Live>>, first: usize, idle: Duration) {
    let order = attempt_order(backends.len(), first, |i| backends[i].counters.suspect());
    for &i in order.iter().take(ATTEMPTS) {
        let Live { backend, counters } = &backends[i];
        match connect(&backend.target).await {
            Ok(outbound) => {
                counters.connected();
                let (to_backend, from_backend) = relay(inbound, outbound, idle).await;
                counters.moved(to_backend, from_backend);
                return;
            }
            Err(error) => {
                counters.failed();
                log(&format!(
                    "{} on {} ({}) did not answer: {error}",
                    backend.status.task, backend.status.node, backend.status.address
                ));
            }
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

fn write_status(path: &Path, status: &ForwarderStatus) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_vec_pretty(status).expect("status serializes");
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests;
