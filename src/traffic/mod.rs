//! Requests at a steady rate to a port published on 127.0.0.1, the way the
//! seed's curl loop watches the load balancing, but counted: who answered,
//! how fast, what failed and when. Each request goes on its own, so one
//! that hangs does not hold the rate up.

mod tally;

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

pub use tally::{Failure, Replica, Summary};
use tally::{Tally, replica_of};

/// A request's own limit: connect, send, and the whole answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Who answered, when the answer does not say.
pub const UNKNOWN_REPLICA: &str = "unknown";

#[derive(Debug, Clone)]
pub struct TrafficOptions {
    pub port: u16,
    /// The request path, starting with '/'.
    pub path: String,
    /// Requests a second.
    pub rate: u32,
    /// None runs until stopped.
    pub duration: Option<Duration>,
}

/// One GET of `path` on 127.0.0.1:`port`: the body of a 2xx answer, or why
/// there was none, in a few words.
pub async fn get(port: u16, path: &str) -> Result<String, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| io_reason(&e))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| io_reason(&e))?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.map_err(|e| io_reason(&e))?;
        Ok::<_, String>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_string())??;
    if response.is_empty() {
        // The forwarder took the connection and found no backend to carry it.
        return Err("closed without an answer".into());
    }
    let (head, body) = response.split_once("\r\n\r\n").ok_or("a malformed answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        return Err(format!("HTTP {status}"));
    }
    Ok(body.to_string())
}

fn io_reason(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::ConnectionAborted => "connection aborted".into(),
        ErrorKind::BrokenPipe => "broken pipe".into(),
        _ => error.to_string(),
    }
}

/// Sends requests until `stop` resolves or the duration ends; `every_second`
/// sees the run so far once a second. Requests still on their way at the
/// end are waited for (at most [`REQUEST_TIMEOUT`]) and counted.
pub async fn run(
    options: &TrafficOptions,
    stop: impl Future<Output = ()>,
    mut every_second: impl FnMut(&Summary),
) -> Summary {
    let started = Instant::now();
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut tally = Tally::default();
    let mut pace = tokio::time::interval(Duration::from_secs(1) / options.rate.max(1));
    pace.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut report = tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    let end = options.duration.map(|d| started + d);
    let until_end = async {
        match end {
            Some(end) => tokio::time::sleep_until(end).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, until_end);
    let mut in_flight = 0usize;
    loop {
        tokio::select! {
            _ = pace.tick() => {
                in_flight += 1;
                let (port, path, done_tx) = (options.port, options.path.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let sent = Instant::now();
                    let outcome = get(port, &path).await;
                    let _ = done_tx.send((sent - started, sent.elapsed(), outcome));
                });
            }
            Some((at, latency, outcome)) = done.recv() => {
                in_flight -= 1;
                tally.record(at, latency, answered_by(outcome));
            }
            _ = report.tick() => every_second(&tally.summary(started.elapsed())),
            () = &mut stop => break,
            () = &mut until_end => break,
        }
    }
    let ended = started.elapsed();
    let last_ones = tokio::time::sleep(REQUEST_TIMEOUT + Duration::from_millis(500));
    tokio::pin!(last_ones);
    while in_flight > 0 {
        tokio::select! {
            Some((at, latency, outcome)) = done.recv() => {
                in_flight -= 1;
                tally.record(at, latency, answered_by(outcome));
            }
            () = &mut last_ones => break,
        }
    }
    tally.summary(ended)
}

fn answered_by(outcome: Result<String, String>) -> Result<String, String> {
    outcome.map(|body| replica_of(&body).unwrap_or_else(|| UNKNOWN_REPLICA.to_string()))
}
