//! The cluster's network: a bridge with a /24 of its own from the pool, its
//! labels carrying what later operations need, and the claim that makes
//! one create of a name the only one.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use tokio::time::Instant;

use crate::addressing::{self, Ipv4Net};
use crate::config::Forward;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message};
use crate::labels::{self, Run};
use crate::naming::{ClusterName, Role};

use super::CreateOptions;

/// Makes the cluster's network, marked as `run`'s, and claims the name;
/// returns its subnet and ID.
pub(super) async fn make(engine: &HostEngine, options: &CreateOptions, run: &Run) -> Result<(Ipv4Net, String)> {
    let mut labels = network_labels(options);
    run.mark(&mut labels);
    let (subnet, id) = create_network(engine, &options.name, labels).await?;
    claim(engine, &options.name, &id).await?;
    Ok((subnet, id))
}

/// The network's labels: the cluster's, and what nodes added later and the
/// forwarder need to know (role settings, forwarded ports).
fn network_labels(options: &CreateOptions) -> HashMap<String, String> {
    let mut network = labels::cluster(&options.name);
    // The certificate made for this cluster covers its whole subnet.
    network.insert(labels::DIRECT_API.into(), "1".into());
    for (key, role) in [
        (labels::MANAGER_SETTINGS, Role::Manager),
        (labels::WORKER_SETTINGS, Role::Worker),
    ] {
        let settings = options.settings.for_role(role);
        if !settings.is_empty() {
            network.insert(
                key.into(),
                serde_json::to_string(&settings).expect("settings serialize"),
            );
        }
    }
    if let Some(port) = options.api_port {
        network.insert(labels::API_PORT.into(), port.to_string());
    }
    if !options.forwards.is_empty() {
        let forwards: Vec<String> = options.forwards.iter().map(Forward::to_arg).collect();
        network.insert(labels::FORWARDS.into(), forwards.join(","));
    }
    network
}

/// Makes sure this run is the only one creating a cluster of this name.
/// Engines before 25 let two networks share a name, so two creates of one
/// name at once each make theirs: the older network wins, and the run that
/// made the other gives way before it makes anything else. The winner
/// waits until the other network is gone: while two share the name, the
/// engine refuses to start a container on either.
async fn claim(engine: &HostEngine, cluster: &ClusterName, network_id: &str) -> Result<()> {
    const GIVE_WAY: Duration = Duration::from_secs(10);
    let deadline = Instant::now() + GIVE_WAY;
    let options = ListNetworksOptionsBuilder::new()
        .filters(&labels::filter(Some(cluster)))
        .build();
    let age = |created: Option<&str>| created.and_then(crate::engine::engine_time);
    loop {
        let networks = engine
            .docker
            .list_networks(Some(options.clone()))
            .await
            .context("cannot list networks")?;
        let oldest = networks
            .iter()
            .min_by_key(|n| (age(n.created.as_deref()), n.id.clone()))
            .and_then(|n| n.id.as_deref());
        match oldest {
            Some(oldest) if oldest != network_id => return Err(Error::ClusterExists(cluster.to_string())),
            _ if networks.len() <= 1 => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(Error::Timeout {
                    what: format!("another network named {} to go", cluster.network()),
                    after: GIVE_WAY,
                    hint: format!("`docker network ls --filter name={}` shows them", cluster.network()),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Creates the cluster's bridge network on the first free subnet of the
/// pool; returns the subnet and the network's ID.
async fn create_network(
    engine: &HostEngine,
    cluster: &ClusterName,
    network_labels: HashMap<String, String>,
) -> Result<(Ipv4Net, String)> {
    let pool = addressing::subnet_pool()?;
    let networks = engine
        .docker
        .list_networks(None)
        .await
        .context("cannot list networks")?;
    let taken: Vec<Ipv4Net> = networks
        .iter()
        .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
        .flatten()
        .filter_map(|c| c.subnet.as_deref()?.parse().ok())
        .collect();
    for subnet in addressing::free_subnets(&pool, &taken) {
        let request = NetworkCreateRequest {
            name: cluster.network(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(subnet.gateway().to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(network_labels.clone()),
            options: Some(HashMap::new()),
            ..Default::default()
        };
        match engine.docker.create_network(request).await {
            Ok(created) => return Ok((subnet, created.id)),
            // Another network took it since we listed them: try the next.
            Err(e) if engine_message(&e).contains("overlap") => continue,
            // Engines from 25 on refuse a second network of the same name.
            Err(e) if engine_message(&e).contains("already exists") => {
                return Err(Error::ClusterExists(cluster.to_string()));
            }
            Err(e) => return Err(e).context("cannot create the cluster network"),
        }
    }
    Err(Error::SubnetExhausted { pool: pool.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_keeps_what_later_operations_need() {
        let mut options = CreateOptions::new(ClusterName::new("lab").unwrap());
        let plain = network_labels(&options);
        assert_eq!(plain[labels::CLUSTER], "lab");
        assert_eq!(plain[labels::DIRECT_API], "1");
        assert!(!plain.contains_key(labels::API_PORT));
        options.api_port = Some(23750);
        assert_eq!(
            network_labels(&options)[labels::API_PORT],
            "23750",
            "the first manager's container made anew takes it again"
        );
    }
}
