//! Access to Docker engines: the host's, which runs the node containers, and
//! each node's own, reached over TLS on a port published on 127.0.0.1.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::AttachContainerOptionsBuilder;
use bollard::{API_DEFAULT_VERSION, Docker};

use crate::error::{Error, Result, engine_message};

/// Selects the host engine for swarmlab itself. `swarmlab env` exports it,
/// so that swarmlab keeps using the host engine after DOCKER_HOST has been
/// pointed at a cluster.
pub(crate) const HOST_ENV: &str = "SWARMLAB_DOCKER_HOST";
const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";
/// Long enough for an image import or export through the API.
const REQUEST_TIMEOUT_SECS: u64 = 600;

const START_HINT: &str = "start one (Debian: `apt-get install docker.io && dockerd &`, or run scripts/setup), or point SWARMLAB_DOCKER_HOST or DOCKER_HOST at one";

/// The engine that runs the node containers.
#[derive(Clone)]
pub struct HostEngine {
    pub docker: Docker,
    /// Where it was reached, as a DOCKER_HOST value.
    pub address: String,
    /// The engine's own ID, asked for once when first needed.
    id: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl HostEngine {
    /// Connects to the engine named by SWARMLAB_DOCKER_HOST, else
    /// DOCKER_HOST, else the local socket, and agrees on an API version.
    pub async fn connect() -> Result<Self> {
        let from_swarmlab = std::env::var(HOST_ENV).ok().filter(|s| !s.is_empty());
        let from_docker = std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty());
        let tls_from_env = from_swarmlab.is_none() && std::env::var_os("DOCKER_TLS_VERIFY").is_some();
        let address = from_swarmlab
            .or(from_docker)
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        let unreachable = |reason: String| Error::EngineUnreachable {
            address: address.clone(),
            reason,
            hint: START_HINT.to_string(),
        };

        let docker = if let Some(path) = address.strip_prefix("unix://") {
            if !Path::new(path).exists() {
                return Err(unreachable(format!("{path} does not exist")));
            }
            Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if address.starts_with("tcp://") && tls_from_env {
            ensure_crypto_provider();
            let dir = std::env::var("DOCKER_CERT_PATH").unwrap_or_default();
            let dir = Path::new(&dir);
            Docker::connect_with_ssl(
                &address,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            )
        } else if address.starts_with("tcp://") || address.starts_with("http://") {
            Docker::connect_with_http(&address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else {
            return Err(Error::invalid(format!(
                "unsupported engine address {address:?}: use unix:///path or tcp://host:port"
            )));
        }
        .map_err(|e| unreachable(engine_message(&e)))?;

        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(connect_reason(&e)))?;
        Ok(HostEngine {
            docker,
            address,
            id: Default::default(),
        })
    }

    /// The engine's ID (`docker info`'s ID): the same whichever address it
    /// is reached at, different for every engine.
    pub(crate) async fn id(&self) -> Result<&str> {
        self.id
            .get_or_try_init(|| async {
                let info = self.docker.info().await.map_err(|e| Error::Engine {
                    context: "cannot ask the engine for its ID".into(),
                    source: e,
                })?;
                info.id
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| Error::Other("the engine did not say its ID (docker info)".into()))
            })
            .await
            .map(String::as_str)
    }

    /// True when the engine runs on this machine, so that its published
    /// 127.0.0.1 ports are this machine's too.
    pub(crate) fn is_local(&self) -> bool {
        self.address.starts_with("unix://")
            || self.address.contains("://127.0.0.1")
            || self.address.contains("://localhost")
    }
}

impl HostEngine {
    /// Writes `secret` to the standard input of a running container made
    /// with OpenStdin and StdinOnce, then closes it: how swarmlab hands
    /// containers their keys, which in the environment or the arguments
    /// would show in `docker inspect`.
    pub(crate) async fn hand_over(&self, container: &str, secret: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let failed = |e: String| Error::Other(format!("cannot hand {container} its TLS identity: {e}"));
        let options = AttachContainerOptionsBuilder::new().stdin(true).stream(true).build();
        let mut attached = self
            .docker
            .attach_container(container, Some(options))
            .await
            .map_err(|e| failed(engine_message(&e)))?;
        attached
            .input
            .write_all(secret)
            .await
            .map_err(|e| failed(e.to_string()))?;
        attached.input.shutdown().await.map_err(|e| failed(e.to_string()))
    }
}

/// Chooses rustls' cryptography once per process. rustls cannot choose by
/// itself when a build enables more than one provider (test tools may).
fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Connects to a node's engine at `endpoint` (see
/// [`crate::cluster::NodeContainer::api_endpoint`]), with the client
/// identity in `cert_dir`, or in plain HTTP without one (clusters made
/// with --insecure). Does not wait for it: see [`wait_ping`].
pub(crate) fn node_client(endpoint: SocketAddr, cert_dir: Option<&Path>) -> Result<Docker> {
    let address = format!("tcp://{endpoint}");
    let Some(cert_dir) = cert_dir else {
        return Docker::connect_with_http(&address, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            .map_err(|e| Error::Other(format!("cannot set up a client for {address}: {}", engine_message(&e))));
    };
    ensure_crypto_provider();
    Docker::connect_with_ssl(
        &address,
        &cert_dir.join("key.pem"),
        &cert_dir.join("cert.pem"),
        &cert_dir.join("ca.pem"),
        REQUEST_TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )
    .map_err(|e| Error::Other(format!("cannot set up a client for {address}: {}", engine_message(&e))))
}

/// Polls an engine until it answers a ping, then agrees on an API version.
/// `alive` is asked between attempts, so that a node whose container died
/// fails at once instead of at the deadline.
pub(crate) async fn wait_ping<F, Fut>(docker: Docker, deadline: tokio::time::Instant, mut alive: F) -> Result<Docker>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut delay = Duration::from_millis(20);
    let mut checks = 0u32;
    loop {
        match docker.ping().await {
            Ok(_) => {
                return docker.negotiate_version().await.map_err(|e| {
                    Error::Other(format!(
                        "engine answered but version negotiation failed: {}",
                        engine_message(&e)
                    ))
                });
            }
            Err(error) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::Other(format!(
                        "its engine never answered: {}",
                        connect_reason(&error)
                    )));
                }
            }
        }
        // Asking the host engine about the container costs a request; do it
        // every few attempts only.
        checks += 1;
        if checks.is_multiple_of(5) {
            alive().await?;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_millis(200));
    }
}

/// A short reason for a failed connection, without hyper's nesting.
fn connect_reason(error: &bollard::errors::Error) -> String {
    let mut text = engine_message(error);
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    crate::error::one_line(&text)
}
