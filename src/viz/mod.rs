//! The live visualizer: one self-contained page (no external assets) that
//! draws a column per node and a box per task, updated by server-sent
//! events as the cluster changes. Nothing is deployed into the cluster.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures_util::Stream;
use tokio::sync::watch;

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::naming::ClusterName;
use crate::snapshot::Collector;

const PAGE: &str = include_str!("page.html");
/// How often the cluster is read; changes reach the page within this.
const INTERVAL: Duration = Duration::from_millis(500);

type Latest = watch::Receiver<Arc<String>>;

/// Serves the visualizer on `address` until `stop` resolves. `listening`
/// is told the address actually bound (port 0 picks a free one).
pub async fn serve(
    engine: &HostEngine,
    name: &ClusterName,
    address: SocketAddr,
    listening: impl FnOnce(SocketAddr),
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
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
    let collecting = tokio::spawn(async move {
        loop {
            let snapshot = collector.collect().await;
            let json = serde_json::to_string(&snapshot).expect("snapshots serialize");
            publish.send_if_modified(|current| {
                let changed = **current != json;
                if changed {
                    *current = Arc::new(json);
                }
                changed
            });
            tokio::time::sleep(INTERVAL).await;
        }
    });

    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/events", get(events))
        .route("/api/snapshot", get(snapshot))
        .with_state(latest);
    listening(bound);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("the visualizer server failed");
    collecting.abort();
    served
}

async fn snapshot(State(latest): State<Latest>) -> impl IntoResponse {
    let json = latest.borrow().clone();
    ([("content-type", "application/json")], json.as_str().to_string())
}

/// Every snapshot as it changes, starting with the current one.
async fn events(State(latest): State<Latest>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold((latest, true), |(mut latest, first)| async move {
        if !first && latest.changed().await.is_err() {
            return None;
        }
        let json = latest.borrow_and_update().clone();
        Some((Ok(Event::default().data(json.as_str())), (latest, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
