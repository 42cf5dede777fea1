//! The live visualizer: one self-contained page (no external assets) that
//! draws a column per node and a box per task, updated by server-sent
//! events as the cluster changes. Nothing is deployed into the cluster.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{Semaphore, watch};

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::forwarder_container;
use crate::naming::ClusterName;
use crate::snapshot::{Collector, Snapshot};

mod timeline;

use timeline::Timeline;

const PAGE: &str = include_str!("page.html");
/// How often the cluster is read; changes reach the page within this. Once
/// a second keeps a look at a hundred nodes and 300 tasks cheap.
const INTERVAL: Duration = Duration::from_secs(1);
/// Event streams open at once; each costs a task and a socket. A handful of
/// tabs is the use; beyond this a page is told to try again later.
pub const MAX_STREAMS: usize = 16;

#[derive(Clone)]
struct Shared {
    latest: watch::Receiver<Arc<String>>,
    streams: Arc<Semaphore>,
}

/// Serves the visualizer on `address` until `stop` resolves. `listening`
/// is told the address actually bound (port 0 picks a free one). An address
/// other than loopback is refused unless `public`.
pub async fn serve(
    engine: &HostEngine,
    name: &ClusterName,
    address: SocketAddr,
    public: bool,
    listening: impl FnOnce(SocketAddr),
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if !address.ip().is_loopback() && !public {
        return Err(Error::invalid(format!(
            "{address} would show the cluster to other machines: add --public if that is meant, or serve on 127.0.0.1"
        )));
    }
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::PortUnavailable(format!("{address} is already in use: choose another --addr"))
        } else {
            Error::Io {
                context: format!("cannot listen on {address}"),
                source: e,
            }
        }
    })?;
    let bound = listener.local_addr().context("cannot read the bound address")?;

    let (publish, latest) = watch::channel(Arc::new(String::new()));
    let mut collector = Collector::new(engine, name);
    let mut timeline = Timeline::default();
    let (engine, name) = (engine.clone(), name.clone());
    let collecting = tokio::spawn(async move {
        // A look starts each second, however long the last took; one that
        // overran is not caught up.
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            let mut snapshot = collector.collect().await;
            // A cluster without published ports has no forwarder to ask.
            if let Ok(forwarder) = forwarder_container::read_status(&engine, &name).await {
                snapshot.count_requests(&forwarder);
            }
            tracing::debug!(took = ?started.elapsed(), "the cluster looked at");
            timeline.observe(&snapshot, now_ms());
            let frame = Frame {
                snapshot: &snapshot,
                events: timeline.events(),
            };
            let json = serde_json::to_string(&frame).expect("snapshots serialize");
            publish.send_if_modified(|current| {
                let changed = **current != json;
                if changed {
                    *current = Arc::new(json);
                }
                changed
            });
        }
    });

    let shared = Shared {
        latest,
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
    };
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/events", get(events))
        .route("/api/snapshot", get(snapshot))
        .with_state(shared)
        .layer(middleware::from_fn_with_state(bound, check_host));
    listening(bound);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("the visualizer server failed");
    collecting.abort();
    served
}

/// What the page gets each time: the cluster as it is, and what happened.
#[derive(serde::Serialize)]
struct Frame<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    events: &'a std::collections::VecDeque<timeline::Event>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Refuses requests for any other host than the one served: a web page
/// from elsewhere that rebinds its own DNS name to 127.0.0.1 must not read
/// the cluster through the visitor's browser.
async fn check_host(State(bound): State<SocketAddr>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if host_is_served(host, bound) {
        next.run(request).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            format!("this server answers for {bound} and localhost only, not for {host:?}\n"),
        )
            .into_response()
    }
}

/// Whether a Host header names the server at `bound`: localhost or an IP
/// address (a loopback one when only loopback is served), with its port if
/// it gives one. A name is what a rebinding page would send.
fn host_is_served(host: &str, bound: SocketAddr) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name, port.parse::<u16>().ok()),
        _ => (host, Some(bound.port())),
    };
    if port != Some(bound.port()) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) if bound.ip().is_loopback() => ip.is_loopback(),
        Ok(ip) => bound.ip().is_unspecified() || ip == bound.ip() || ip.is_loopback(),
        Err(_) => false,
    }
}

async fn snapshot(State(shared): State<Shared>) -> impl IntoResponse {
    let json = shared.latest.borrow().clone();
    ([("content-type", "application/json")], json.as_str().to_string())
}

/// Every snapshot as it changes, starting with the current one; at most
/// [`MAX_STREAMS`] at once.
async fn events(State(shared): State<Shared>) -> Response {
    let Ok(permit) = shared.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_STREAMS} pages follow this cluster already: close one and reload\n"),
        )
            .into_response();
    };
    // The permit lives as long as the stream, and is given back with it.
    let state = (shared.latest, true, permit);
    let stream = futures_util::stream::unfold(state, |(mut latest, first, permit)| async move {
        if !first && latest.changed().await.is_err() {
            return None;
        }
        let json = latest.borrow_and_update().clone();
        Some((
            Ok::<_, Infallible>(Event::default().data(json.as_str())),
            (latest, false, permit),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_served_host_is_answered() {
        let loopback: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        for host in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST:8000",
            "[::1]:8000",
            "localhost",
            "[::1]",
        ] {
            assert!(host_is_served(host, loopback), "{host}");
        }
        for host in [
            "evil.example:8000",
            "127.0.0.1.nip.io:8000",
            "127.0.0.1:9000",
            "localhost:80",
            "192.168.1.10:8000",
            "",
            ":8000",
        ] {
            assert!(!host_is_served(host, loopback), "{host:?}");
        }
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(host_is_served("192.168.1.10:8080", public));
        assert!(host_is_served("localhost:8080", public));
        assert!(!host_is_served("rebound.example:8080", public));
        let one: SocketAddr = "192.168.1.10:80".parse().unwrap();
        assert!(host_is_served("192.168.1.10", one), "the port may be left out");
        assert!(!host_is_served("192.168.1.11", one));
    }
}
