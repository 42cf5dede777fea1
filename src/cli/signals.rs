//! Being asked to stop: Ctrl-C everywhere; SIGTERM (`docker stop`) and
//! SIGHUP (the terminal went away) too where there are such signals.

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
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
