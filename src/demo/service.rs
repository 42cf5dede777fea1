//! The demo service: what it is (the quotes image, one replica, a port
//! published through the routing mesh) and its first answer on localhost.

use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
};
use tokio::time::Instant;

use super::SERVICE;
use crate::demo_image::{self, DEMO_TAG};
use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::forwarder_container;
use crate::naming::ClusterName;

/// How often the first answer's wait reads the forwarder's status.
const LOOK_EVERY: Duration = Duration::from_secs(2);

pub(super) fn service_spec(port: u16) -> ServiceSpec {
    ServiceSpec {
        name: Some(SERVICE.into()),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(DEMO_TAG.into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            ports: Some(vec![EndpointPortConfig {
                protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                target_port: Some(demo_image::DEMO_PORT as i64),
                published_port: Some(port as i64),
                publish_mode: Some(EndpointPortConfigPublishModeEnum::INGRESS),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) struct Answer {
    pub(super) address: String,
    pub(super) quote: String,
}

/// Waits for the first answer on localhost:`port`. Where the forwarder
/// says the port cannot be served here (no routing mesh it can use, the
/// port taken by another program), that is the error, at once.
pub(super) async fn wait_for_answer(
    engine: &HostEngine,
    name: &ClusterName,
    port: u16,
    timeout: Duration,
) -> Result<Answer> {
    let deadline = Instant::now() + timeout;
    let mut next_look = Instant::now() + LOOK_EVERY;
    loop {
        match get_quote(port).await {
            Ok(answer) => return Ok(answer),
            Err(error) if Instant::now() >= deadline => {
                return Err(Error::Timeout {
                    what: format!("localhost:{port} to answer (last: {error})"),
                    after: timeout,
                    hint: "`swarmlab ports` shows whether the forwarder has a backend".into(),
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        if Instant::now() >= next_look {
            next_look = Instant::now() + LOOK_EVERY;
            // A forwarder without a status yet is still starting.
            if let Ok(status) = forwarder_container::read_status(engine, name).await
                && let Some(port) = status
                    .ports
                    .iter()
                    .find(|p| p.published_port == port && p.state.is_final())
            {
                return Err(Error::Prerequisite(format!(
                    "localhost:{} cannot answer: {}",
                    port.published_port, port.message
                )));
            }
        }
    }
}

/// GET /api/quote on 127.0.0.1:`port`.
pub(super) async fn get_quote(port: u16) -> std::result::Result<Answer, String> {
    let body = crate::traffic::get(port, "/api/quote").await?;
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    Ok(Answer {
        address: json["ipAddress"].as_str().unwrap_or_default().to_string(),
        quote: json["quote"].as_str().unwrap_or_default().to_string(),
    })
}
