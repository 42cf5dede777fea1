//! Where the client is not Linux (or `SWARMLAB_PORTABLE_CHECK` leaves the
//! Linux-only parts out): no network namespace can be entered, so the
//! forwarder's task-direct path says so. The forwarder itself only ever
//! runs in a Linux container; this keeps the rest of the crate building
//! for macOS and Windows clients.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NodeNamespace;

fn unsupported() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "entering a node's network namespace needs Linux",
    )
}

impl NodeNamespace {
    pub(crate) fn open(_pid: i32) -> std::io::Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn holds(&self, _pid: i32) -> bool {
        false
    }

    pub(crate) async fn connect(&self, _address: SocketAddr, _timeout: Duration) -> std::io::Result<TcpStream> {
        Err(unsupported())
    }
}
