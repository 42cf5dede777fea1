//! Access to Docker engines: the host's, which runs the node containers, and
//! each node's own, reached over TLS on a port published on 127.0.0.1.

mod endpoint;
mod facts;
mod forwards;
mod proxies;
mod ssh;
pub mod tunnels;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::query_parameters::AttachContainerOptionsBuilder;
use bollard::{API_DEFAULT_VERSION, Docker};

use crate::error::{Context, Error, Result, engine_message};

pub(crate) use endpoint::host_mark;
pub use endpoint::{Endpoint, Source};
pub(crate) use facts::EngineFacts;

/// Long enough for an image import or export through the API.
const REQUEST_TIMEOUT_SECS: u64 = 600;

const START_HINT: &str = "start one (Debian: `apt-get install docker.io && dockerd &`, or run scripts/setup), or choose one with DOCKER_HOST, DOCKER_CONTEXT or `docker context use`";

/// A client for an endpoint; Other(reason) when it cannot be set up.
fn client(endpoint: &Endpoint) -> Result<Docker> {
    let host = endpoint.host.as_str();
    let failed = |e: bollard::errors::Error| Error::Other(engine_message(&e));
    if let Some(path) = host.strip_prefix("unix://") {
        if !Path::new(path).exists() {
            return Err(Error::Other(format!("{path} does not exist")));
        }
        return Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION).map_err(failed);
    }
    #[cfg(windows)]
    if host.starts_with("npipe://") {
        return Docker::connect_with_named_pipe(host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION).map_err(failed);
    }
    if host.starts_with("tcp://") || host.starts_with("http://") || host.starts_with("https://") {
        return match &endpoint.tls {
            Some(dir) => {
                ensure_crypto_provider();
                Docker::connect_with_ssl(
                    host,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    REQUEST_TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                )
                .map_err(failed)
            }
            None => Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION).map_err(failed),
        };
    }
    if host.starts_with("ssh://") {
        return ssh::client(host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION);
    }
    Err(Error::invalid(format!(
        "unsupported engine address {host:?}: use unix:///path, tcp://host:port{}",
        if cfg!(windows) {
            ", ssh://user@host or npipe:////./pipe/NAME"
        } else {
            " or ssh://user@host"
        }
    )))
}

/// The engine that runs the node containers.
#[derive(Clone)]
pub struct HostEngine {
    pub docker: Docker,
    /// How it was found: what `swarmlab env` keeps for swarmlab.
    pub endpoint: Endpoint,
    /// The engine's own ID, asked for once when first needed.
    id: std::sync::Arc<tokio::sync::OnceCell<String>>,
    /// What it says of itself, asked for once when first needed.
    facts: std::sync::Arc<tokio::sync::OnceCell<EngineFacts>>,
    /// This process runs in a container on the cluster network (the port
    /// forwarder where the engine is elsewhere): nodes are reached at their
    /// own addresses, not at ports published on the host's 127.0.0.1.
    on_cluster_network: bool,
    proxy_env: Vec<String>,
}

impl HostEngine {
    /// Connects to the host engine, found as the docker CLI finds it (see
    /// `endpoint`), and agrees on an API version.
    pub async fn connect() -> Result<Self> {
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from);
        let var = |name: &str| std::env::var(name).ok();
        let endpoint = endpoint::resolve(&var, home.as_deref())?;
        let proxy_env = proxies::container_env(endpoint::config_dir(&var, home.as_deref()).as_deref(), &endpoint.host);
        let unreachable = |reason: String| Error::EngineUnreachable {
            address: endpoint.describe(),
            reason,
            hint: START_HINT.to_string(),
        };
        let docker = client(&endpoint).map_err(|e| match e {
            Error::Other(reason) => unreachable(reason),
            other => other,
        })?;
        let docker = match docker.negotiate_version().await {
            Ok(docker) => docker,
            // Over ssh, ssh's own words say more than a closed pipe.
            Err(e) if endpoint.host.starts_with("ssh://") => {
                let said = ssh::last_said().await;
                return Err(unreachable(said.map_or_else(
                    || connect_reason(&e),
                    |said| format!("ssh: {}", said.trim_start_matches("ssh: ")),
                )));
            }
            Err(e) => return Err(unreachable(connect_reason(&e))),
        };
        Ok(HostEngine {
            docker,
            endpoint,
            id: Default::default(),
            facts: Default::default(),
            on_cluster_network: false,
            proxy_env,
        })
    }

    /// The proxy variables `docker run` would give a container on this
    /// engine (`proxies` in the docker config).
    pub(crate) fn proxy_env(&self) -> Vec<String> {
        self.proxy_env.clone()
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

    /// True when the engine runs on this machine (on this kernel, under
    /// this hostname), so that its host network, published 127.0.0.1
    /// ports and kernel limits are this machine's. Not an engine in a VM
    /// (Docker Desktop) or on another machine, even one reached at a
    /// 127.0.0.1 address that forwards there.
    pub(crate) async fn is_local(&self) -> Result<bool> {
        Ok(self.facts().await?.here)
    }

    /// What the engine says of itself (`docker info`), asked for once.
    pub(crate) async fn facts(&self) -> Result<EngineFacts> {
        self.facts
            .get_or_try_init(|| async {
                let info = self.docker.info().await.map_err(|e| Error::Engine {
                    context: "cannot ask the engine about itself (docker info)".into(),
                    source: e,
                })?;
                Ok::<_, Error>(EngineFacts::from_info(&info))
            })
            .await
            .copied()
    }

    /// The same engine, for a process on the cluster network.
    pub fn on_cluster_network(mut self) -> Self {
        self.on_cluster_network = true;
        self
    }

    pub(crate) fn is_on_cluster_network(&self) -> bool {
        self.on_cluster_network
    }

    /// Removes a container and its anonymous volumes; a missing one is fine.
    pub(crate) async fn remove_container(&self, name: &str) -> Result<()> {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(name, Some(options)).await {
            Err(e) if !crate::error::is_not_found(&e) => {
                Err(e).with_context(|| format!("cannot remove container {name}"))
            }
            _ => Ok(()),
        }
    }

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
/// A time as an engine states it (Go's RFC 3339 with up to nine digits of
/// fraction, in UTC); None for the zero time or what does not parse.
pub(crate) fn engine_time(text: &str) -> Option<std::time::SystemTime> {
    match humantime::parse_rfc3339_weak(text) {
        Ok(time) => Some(time),
        Err(error) => {
            tracing::debug!(text, %error, "an engine time that does not parse");
            None
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn engine_times_parse_as_docker_writes_them() {
        let second = UNIX_EPOCH + Duration::from_secs(1_796_520_007);
        assert_eq!(engine_time("2026-12-06T01:20:07Z"), Some(second));
        assert_eq!(
            engine_time("2026-12-06T01:20:07.5Z"),
            Some(second + Duration::from_millis(500))
        );
        assert_eq!(
            engine_time("2026-12-06T01:20:07.123456789Z"),
            Some(second + Duration::from_nanos(123_456_789))
        );
        assert_eq!(engine_time("0001-01-01T00:00:00Z"), None, "a container never started");
        assert_eq!(engine_time(""), None);
    }
}
