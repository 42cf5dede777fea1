//! Being asked to stop: Ctrl-C everywhere; SIGTERM (`docker stop`) and
//! SIGHUP (the terminal went away) too where there are such signals; and
//! the reader of our output going away (`swarmlab create 2>&1 | head -1`).
//!
//! SIGPIPE keeps Rust's disposition (ignored), so a write to a closed pipe
//! fails instead of killing the process: a create killed that way would
//! leave a half-made cluster behind, and so would swarmlab dying on a
//! write to an `ssh` child whose connection dropped.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

static GONE: AtomicBool = AtomicBool::new(false);
static GONE_NOTICE: Notify = Notify::const_new();

/// Called when stdout or stderr cannot be written: whoever read it has gone.
pub(super) fn output_gone() {
    GONE.store(true, Ordering::SeqCst);
    GONE_NOTICE.notify_waiters();
}

/// Resolves once [`output_gone`] has been called.
async fn reader_gone() {
    // Registered before the flag is read, so a call in between still wakes it.
    let notice = GONE_NOTICE.notified();
    if !GONE.load(Ordering::SeqCst) {
        notice.await;
    }
}

/// Resolves on the first request to stop.
pub(super) async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut others: Vec<_> = [SignalKind::terminate(), SignalKind::hangup()]
            .into_iter()
            .filter_map(|kind| signal(kind).ok())
            .collect();
        let any_other = async {
            if others.is_empty() {
                std::future::pending::<()>().await;
            }
            futures_util::future::select_all(others.iter_mut().map(|s| Box::pin(s.recv()))).await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = any_other => {},
            _ = reader_gone() => {},
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = reader_gone() => {},
    }
}

/// Resolves on the first request to stop, having said so: `Interrupted:
/// {doing}`; a second Ctrl-C while that is done exits at once.
async fn interrupted(doing: &str) {
    stop_requested().await;
    errln!("Interrupted: {doing} (press Ctrl-C again to stop at once)");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

/// A token that the first request to stop cancels (see [`interrupted`]),
/// for work that cleans up after itself when cancelled. Listens until
/// dropped.
pub(super) struct Stopper {
    pub(super) token: CancellationToken,
    listening: tokio::task::JoinHandle<()>,
}

impl Stopper {
    /// `doing` says what the cancelled work does next ("rolling back").
    pub(super) fn new(doing: &'static str) -> Self {
        let token = CancellationToken::new();
        let cancel = token.clone();
        let listening = tokio::spawn(async move {
            interrupted(doing).await;
            cancel.cancel();
        });
        Stopper { token, listening }
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.listening.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_gone_stops_what_waits_and_what_comes_later() {
        let waiting = tokio::spawn(reader_gone());
        tokio::task::yield_now().await;
        output_gone();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("a waiter is woken")
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), reader_gone())
            .await
            .expect("a later waiter returns at once");
    }
}
