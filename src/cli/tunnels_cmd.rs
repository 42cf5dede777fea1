//! The host engine as every command connects to it, and, for an ssh://
//! engine on another machine, the process that keeps its published ports
//! tunnelled to this machine's 127.0.0.1 (see `swarmlab::engine::tunnels`).

use std::process::Stdio;

use swarmlab::engine::{HostEngine, tunnels};
use swarmlab::error::Result;
use tokio_util::sync::CancellationToken;

/// Connects to the host engine. For an ssh:// one, it also starts
/// `swarmlab tunnels` in the background, which outlives this command and
/// ends at once if another one keeps the tunnels or none are needed.
pub(super) async fn connect() -> Result<HostEngine> {
    let engine = HostEngine::connect().await?;
    if let Some(log) = tunnels::log_file(&engine.endpoint.host) {
        start_tunnels(&log);
    }
    Ok(engine)
}

/// Failing to start is not this command's failure: where the tunnels are
/// missing, the command that needs them says so, with the log's name.
fn start_tunnels(log: &std::path::Path) {
    let Ok(exe) = std::env::current_exe() else { return };
    let Ok(out) = std::fs::OpenOptions::new().create(true).append(true).open(log) else {
        return;
    };
    let Ok(err) = out.try_clone() else { return };
    let mut command = std::process::Command::new(exe);
    command.arg("tunnels").stdin(Stdio::null()).stdout(out).stderr(err);
    // Out of the terminal's process group: Ctrl-C at this command spares it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    // It runs on after this command (then the init process reaps it); one
    // that ends first (another process keeps the tunnels) is reaped here,
    // not left a zombie while a long command (viz, top) runs.
    if let Ok(mut child) = command.spawn() {
        std::thread::spawn(move || child.wait());
    }
}

/// `swarmlab tunnels` (hidden): keeps the tunnels until the engine has no
/// swarmlab container left.
pub(super) async fn run() -> Result<()> {
    let engine = HostEngine::connect().await?;
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        super::signals::stop_requested().await;
        stopper.cancel();
    });
    let say = |line: &str| {
        errln!(
            "{} {line}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        );
    };
    tunnels::follow(&engine, stop, &say).await
}
