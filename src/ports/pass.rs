//! What a port container runs (see `forwarder_container`'s port
//! containers): listen on the port in its own namespace, which the engine
//! publishes, and pass each connection to the forwarder by name.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};

use super::relay::relay;

/// The forwarder closes idle connections itself; this only bounds a pass
/// whose forwarder went away without a word.
const IDLE: Duration = Duration::from_secs(3600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Passes connections to `port` on to `to`:`port` until `stop` resolves.
pub async fn pass(port: u16, to: &str, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await.map_err(|e| Error::Io {
        context: format!("cannot listen on port {port}"),
        source: e,
    })?;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let to = to.to_string();
                tokio::spawn(async move {
                    // The name is asked of the engine's DNS each time: the
                    // forwarder may have come back at another address.
                    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((to.as_str(), port))).await;
                    match connected {
                        Ok(Ok(outbound)) => {
                            relay(inbound, outbound, IDLE).await;
                        }
                        Ok(Err(error)) => super::log::log(&format!("{to}:{port} did not answer: {error}")),
                        Err(_) => super::log::log(&format!("{to}:{port} did not answer within {CONNECT_TIMEOUT:?}")),
                    }
                });
            }
            () = &mut stop => return Ok(()),
        }
    }
}
