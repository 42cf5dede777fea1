//! Connecting from inside another process's network namespace.
//!
//! Where the kernel has no IPVS, a task's port answers only inside its
//! node: at the task's address on the node's docker_gwbridge, which every
//! node numbers alike. A socket opened after `setns` into the node's network
//! namespace belongs to that namespace for good, so the forwarder can keep
//! serving from the host's namespace and still reach the task.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Connects to `address` as seen from the network namespace of `pid`.
/// Runs on a thread of its own, which ends with the call: `setns` changes
/// the namespace of the calling thread only, and this thread is never reused.
pub(crate) async fn connect_in(pid: i32, address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-connect".into())
        .spawn(move || {
            let _ = done.send(enter_and_connect(pid, address, timeout));
        })?;
    result
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the connecting thread ended early")))
}

fn enter_and_connect(pid: i32, address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let namespace = File::open(format!("/proc/{pid}/ns/net"))?;
    // SAFETY: setns with a valid namespace descriptor only changes this
    // thread's network namespace.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    TcpStream::connect_timeout(&address, timeout)
}
