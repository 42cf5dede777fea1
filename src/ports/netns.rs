//! Sockets in a node's network namespace.
//!
//! Where the kernel has no IPVS, a task's port answers only inside its
//! node: at the task's address on the node's docker_gwbridge, which every
//! node numbers alike. A socket belongs for good to the network namespace
//! it was made in, so the forwarder keeps serving from the host's namespace
//! and has sockets made in the node's, then connects them as usual.
//!
//! A namespace is opened once, by the process ID the engine gave for the
//! node's container, and held open: connections never name a process, so a
//! node that restarts (a new process, a new namespace) or a process ID the
//! kernel hands to someone else cannot send them into the wrong namespace.
//! One thread makes every socket, entering each namespace in turn: no
//! thread per connection, nor per node.

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<std::io::Result<OwnedFd>>;

/// A request to the socket maker: a socket for `address`, in a namespace.
struct Request {
    namespace: Arc<File>,
    address: SocketAddr,
    reply: Reply,
}

/// A node's network namespace, held open.
pub(crate) struct NodeNamespace {
    file: Arc<File>,
    /// The namespace's identity (device and inode of its nsfs file).
    identity: (u64, u64),
}

impl std::fmt::Debug for NodeNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeNamespace({}:{})", self.identity.0, self.identity.1)
    }
}

impl PartialEq for NodeNamespace {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}

impl Eq for NodeNamespace {}

impl NodeNamespace {
    /// Opens the network namespace process `pid` is in.
    pub(crate) fn open(pid: i32) -> std::io::Result<Self> {
        let file = File::open(format!("/proc/{pid}/ns/net"))?;
        let metadata = file.metadata()?;
        Ok(NodeNamespace {
            file: Arc::new(file),
            identity: (metadata.dev(), metadata.ino()),
        })
    }

    /// Whether process `pid` is (still) in this namespace.
    pub(crate) fn holds(&self, pid: i32) -> bool {
        std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| (m.dev(), m.ino()) == self.identity)
    }

    /// Connects to `address` as seen from inside the namespace.
    pub(crate) async fn connect(&self, address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
        let (reply, socket) = oneshot::channel();
        let request = Request {
            namespace: self.file.clone(),
            address,
            reply,
        };
        socket_maker()?
            .send(request)
            .map_err(|_| std::io::Error::other("the socket thread has ended"))?;
        let socket = socket
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the socket thread has ended")))?;
        let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
        tokio::time::timeout(timeout, socket.connect(address))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    }
}

/// The one thread that makes sockets in other namespaces: `setns` changes
/// the namespace of the calling thread, so no other thread may do it.
fn socket_maker() -> std::io::Result<&'static mpsc::Sender<Request>> {
    static MAKER: OnceLock<Option<mpsc::Sender<Request>>> = OnceLock::new();
    MAKER
        .get_or_init(|| {
            let (requests, incoming) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("netns-sockets".into())
                .spawn(move || {
                    while let Ok(request) = incoming.recv() {
                        let _ = request.reply.send(socket_in(&request.namespace, request.address));
                    }
                })
                .ok()
                .map(|_| requests)
        })
        .as_ref()
        .ok_or_else(|| std::io::Error::other("cannot start the thread that makes sockets in nodes"))
}

/// Enters `namespace` and makes a non-blocking TCP socket of `address`'s
/// family there, not yet connected.
fn socket_in(namespace: &File, address: SocketAddr) -> std::io::Result<OwnedFd> {
    // SAFETY: setns with a valid namespace descriptor changes only this
    // thread's network namespace; only the socket thread calls it.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let family = if address.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) has no memory arguments; a non-negative result is a
    // new descriptor that nothing else owns.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_made_in_our_own_namespace_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let own = std::process::id() as i32;
        let namespace = NodeNamespace::open(own).unwrap();
        assert!(namespace.holds(own));
        assert!(!namespace.holds(i32::MAX), "a process that does not exist");
        let connected = namespace.connect(address, Duration::from_secs(2)).await.unwrap();
        assert_eq!(connected.peer_addr().unwrap(), address);
        assert_eq!(namespace, NodeNamespace::open(own).unwrap(), "the same namespace");
    }
}
