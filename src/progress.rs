//! How long-running work reports what it is doing. The library only emits
//! events; the CLI decides how they look (live lines on a terminal, plain log
//! lines otherwise).

/// Receives progress events. Implementations must be cheap: events are sent
/// from the tasks doing the work.
pub trait Progress: Send + Sync {
    /// `node` started `step` (e.g. "starting container").
    fn step(&self, node: &str, step: &str);
    /// `node` is finished, with a short summary.
    fn done(&self, node: &str, summary: &str);
    /// A message about the whole operation.
    fn note(&self, message: &str);
}
