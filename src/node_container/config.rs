//! What a node container is made of: image, entrypoint, dockerd's
//! arguments, environment, ports, volume, labels, and the privileges it asks
//! for.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Mount, MountType, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use crate::labels;
use crate::naming::Role;
use crate::node_choice::EngineVersion;
use crate::tls::NODE_TLS_DIR;

use super::{API_PORT, ENTRYPOINT_SCRIPT, NodePlan, NodeSecurity, tuning};

/// The one address the plain-HTTP API of an --insecure node answers.
const INSECURE_API_FROM: &str = "SWARMLAB_API_FROM";

/// The dockerd arguments of every node: the local socket for `docker exec
/// NODE docker ...`, TLS-only TCP for swarmlab and the docker CLI (or
/// plain TCP, which dockerd delays its start-up for, with --insecure), and
/// the settings measured at scale (see `tuning`).
fn dockerd_args(insecure: bool, engine: Option<&EngineVersion>) -> Vec<String> {
    let mut args = vec![
        "--host=unix:///var/run/docker.sock".to_string(),
        "--host=tcp://0.0.0.0:2376".into(),
    ];
    args.extend(tuning::dockerd_args(engine));
    if insecure {
        args.push("--tls=false".into());
    } else {
        args.extend([
            "--tlsverify".into(),
            format!("--tlscacert={NODE_TLS_DIR}/ca.pem"),
            format!("--tlscert={NODE_TLS_DIR}/cert.pem"),
            format!("--tlskey={NODE_TLS_DIR}/key.pem"),
        ]);
    }
    args
}

pub(super) fn container_config(plan: &NodePlan, privileged: bool) -> ContainerCreateBody {
    let mut env = vec![
        crate::tls::STDIN_ENV.to_string(),
        format!(
            "GOGC={}",
            tuning::gogc(plan.node.role, plan.cluster_nodes, plan.engine.as_ref())
        ),
        format!("GOMAXPROCS={}", tuning::GOMAXPROCS),
    ];
    if plan.insecure {
        // A plain-HTTP engine API is root on the host to whoever reaches
        // it: the entrypoint lets only the host reach it (its published
        // port on 127.0.0.1 arrives from the host's address on the network),
        // not other nodes, nor containers inside any node.
        env.push(format!("{INSECURE_API_FROM}={}", plan.gateway));
    }
    let port_bindings = plan.publish_api.then(|| {
        HashMap::from([(
            API_PORT.to_string(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(plan.api_port.map(|p| p.to_string()).unwrap_or_default()),
            }]),
        )])
    });
    let mut host = HostConfig {
        network_mode: Some(plan.network.clone()),
        port_bindings,
        mounts: Some(vec![Mount {
            target: Some("/var/lib/docker".into()),
            source: Some(plan.node.volume(&plan.cluster)),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        }]),
        // Brings the cluster back by itself after the host engine restarts.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    host.memory = plan.settings.memory.map(|bytes| bytes as i64);
    host.nano_cpus = plan.settings.cpus.map(|cpus| (cpus * 1e9) as i64);
    if plan.node.role == Role::Manager {
        host.cpu_shares = Some(tuning::MANAGER_CPU_SHARES);
    }
    let mut container_labels = labels::node(&plan.cluster, plan.node);
    plan.run.mark(&mut container_labels);
    if plan.insecure {
        container_labels.insert(labels::API.into(), "plain".into());
    }
    if !plan.settings.is_empty() {
        let json = serde_json::to_string(&plan.settings).expect("settings serialize");
        container_labels.insert(labels::SETTINGS.into(), json);
    }
    let security = if privileged {
        NodeSecurity::Privileged
    } else {
        NodeSecurity::Capabilities
    };
    container_labels.insert(labels::SECURITY.into(), security.as_str().into());
    if privileged {
        host.privileged = Some(true);
    } else {
        // The profile measured to run a Docker engine where --privileged is
        // refused; the entrypoint then makes /sys and the cgroups writable.
        host.cap_add = Some(vec!["ALL".into()]);
        host.cap_drop = Some(vec!["SYS_RESOURCE".into()]);
        host.security_opt = Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]);
        // What the CLI's `--security-opt systempaths=unconfined` sends.
        host.masked_paths = Some(vec![]);
        host.readonly_paths = Some(vec![]);
        host.device_cgroup_rules = Some(vec!["a *:* rwm".into()]);
    }
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        hostname: Some(plan.node.hostname()),
        env: Some(env),
        // The engine's TLS identity comes on standard input, once (see `start`).
        open_stdin: Some(true),
        stdin_once: Some(true),
        entrypoint: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            ENTRYPOINT_SCRIPT.into(),
            "swarmlab-node".into(),
        ]),
        cmd: Some(
            dockerd_args(plan.insecure, plan.engine.as_ref())
                .into_iter()
                .chain(plan.rootless.then(|| "--rootless".to_string()))
                .chain(plan.settings.dockerd_args.clone())
                .collect(),
        ),
        exposed_ports: Some(vec![API_PORT.to_string()]),
        labels: Some(container_labels),
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                plan.network.clone(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(plan.address.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addressing::Ipv4Net;
    use crate::config::NodeSettings;
    use crate::labels::Run;
    use crate::naming::{ClusterName, NodeName};
    use crate::node_container::ClusterFacts;

    fn plan(node: &str, insecure: bool, direct_api: bool) -> NodePlan {
        let cluster = ClusterName::new("lab").unwrap();
        let subnet: Ipv4Net = "172.28.7.0/24".parse().unwrap();
        let facts = ClusterFacts {
            cluster: &cluster,
            images: &crate::node_choice::Images::single("swarmlab/node:latest"),
            network_id: "0123456789abcdef",
            subnet: &subnet,
            direct_api,
            insecure,
            rootless: false,
            run: &Run::new(),
            nodes: 4,
        };
        let settings = NodeSettings {
            memory: Some(512 << 20),
            cpus: Some(1.5),
            dockerd_args: vec!["--debug".into()],
            ..Default::default()
        };
        NodePlan::new(&facts, node.parse::<NodeName>().unwrap(), settings, None)
    }

    fn env(config: &ContainerCreateBody) -> Vec<String> {
        config.env.clone().unwrap()
    }

    #[test]
    fn a_privileged_node() {
        let config = container_config(&plan("manager-1", false, true), true);
        let host = config.host_config.as_ref().unwrap();
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.cap_add, None);
        assert_eq!(config.labels.as_ref().unwrap()[labels::SECURITY], "privileged");
        assert_eq!(config.hostname.as_deref(), Some("manager-1"));
        assert_eq!(config.image.as_deref(), Some("swarmlab/node:latest"));
        assert_eq!(
            host.network_mode.as_deref(),
            Some("0123456789abcdef"),
            "the network by its ID"
        );
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(
            host.cpu_shares,
            Some(tuning::MANAGER_CPU_SHARES),
            "the control plane first"
        );
        let worker = container_config(&plan("worker-1", false, true), true);
        assert_eq!(worker.host_config.unwrap().cpu_shares, None);
        let mount = &host.mounts.as_ref().unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("lab-manager-1"));
        assert_eq!(mount.target.as_deref(), Some("/var/lib/docker"));
        assert_eq!(
            host.restart_policy.as_ref().unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            "back by itself after the host engine restarts"
        );
    }

    #[test]
    fn the_capability_profile_where_privileged_is_refused() {
        let config = container_config(&plan("worker-1", false, true), false);
        let host = config.host_config.as_ref().unwrap();
        assert_eq!(host.privileged, None);
        assert_eq!(host.cap_add, Some(vec!["ALL".to_string()]));
        assert_eq!(host.cap_drop, Some(vec!["SYS_RESOURCE".to_string()]));
        assert_eq!(host.masked_paths, Some(vec![]), "systempaths=unconfined");
        assert!(
            host.security_opt
                .as_ref()
                .unwrap()
                .contains(&"apparmor=unconfined".to_string())
        );
        assert_eq!(config.labels.as_ref().unwrap()[labels::SECURITY], "capabilities");
    }

    #[test]
    fn the_api_is_published_on_loopback_only_and_only_where_needed() {
        let manager = container_config(&plan("manager-1", false, true), true);
        let bindings = manager.host_config.as_ref().unwrap().port_bindings.as_ref().unwrap();
        let binding = &bindings[API_PORT].as_ref().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some(""), "a port the engine picks");
        let mut fixed = plan("manager-1", false, true);
        fixed.api_port = Some(23750);
        let fixed = container_config(&fixed, true)
            .host_config
            .unwrap()
            .port_bindings
            .unwrap();
        assert_eq!(fixed[API_PORT].as_ref().unwrap()[0].host_port.as_deref(), Some("23750"));
        let direct = container_config(&plan("worker-1", false, true), true);
        assert!(direct.host_config.as_ref().unwrap().port_bindings.is_none());
        let remote = container_config(&plan("worker-1", false, false), true);
        assert!(remote.host_config.as_ref().unwrap().port_bindings.is_some());
    }

    #[test]
    fn no_secret_in_the_environment_and_the_identity_on_stdin() {
        let config = container_config(&plan("worker-2", false, true), true);
        let env = env(&config);
        assert!(env.contains(&"SWARMLAB_TLS=stdin".to_string()));
        assert!(
            env.iter()
                .all(|e| !e.contains("PRIVATE KEY") && !e.contains("CERTIFICATE"))
        );
        assert_eq!(config.open_stdin, Some(true));
        assert_eq!(config.stdin_once, Some(true));
        assert!(env.contains(&"GOGC=50".to_string()), "workers: {env:?}");
        let manager = env_of("manager-1");
        assert!(manager.contains(&"GOGC=25".to_string()), "managers: {manager:?}");
        assert!(env.iter().all(|e| !e.starts_with(INSECURE_API_FROM)));
    }

    #[test]
    fn workers_of_a_large_cluster_of_an_old_engine_get_its_heap_target() {
        let mut large = plan("worker-70", false, true);
        large.cluster_nodes = 101;
        large.engine = EngineVersion::parse("20.10.24").ok();
        assert!(env(&container_config(&large, true)).contains(&"GOGC=200".to_string()));
    }

    #[test]
    fn gossip_packets_fit_a_host_bridge_not_a_wire() {
        let args = container_config(&plan("worker-1", false, true), true).cmd.unwrap();
        assert!(
            args.contains(&"--network-control-plane-mtu=9000".to_string()),
            "{args:?}"
        );
    }

    #[test]
    fn the_node_engine_version_reaches_its_arguments() {
        let mut node = plan("worker-1", false, true);
        let off = "--ip6tables=false".to_string();
        node.engine = EngineVersion::parse("28.5").ok();
        assert!(container_config(&node, true).cmd.unwrap().contains(&off));
        node.engine = EngineVersion::parse("26.1").ok();
        assert!(!container_config(&node, true).cmd.unwrap().contains(&off));
    }

    fn env_of(node: &str) -> Vec<String> {
        env(&container_config(&plan(node, false, true), true))
    }

    #[test]
    fn dockerd_listens_with_tls_unless_insecure_then_only_for_the_host() {
        let secure = container_config(&plan("manager-1", false, true), true);
        let args = secure.cmd.clone().unwrap();
        assert!(args.contains(&"--tlsverify".to_string()));
        assert_eq!(
            args.last().map(String::as_str),
            Some("--debug"),
            "the file's arguments come last"
        );
        let insecure = container_config(&plan("manager-1", true, true), true);
        assert!(insecure.cmd.as_ref().unwrap().contains(&"--tls=false".to_string()));
        assert!(env(&insecure).contains(&format!("{INSECURE_API_FROM}=172.28.7.1")));
        assert_eq!(insecure.labels.as_ref().unwrap()[labels::API], "plain");
    }

    #[test]
    fn the_entrypoint_is_swarmlabs_whatever_the_image() {
        let config = container_config(&plan("worker-1", false, true), true);
        let entrypoint = config.entrypoint.unwrap();
        assert_eq!(entrypoint[..2], ["/bin/sh".to_string(), "-c".to_string()]);
        assert_eq!(entrypoint[2], ENTRYPOINT_SCRIPT);
        let labels = config.labels.unwrap();
        assert_eq!(labels[labels::CLUSTER], "lab");
        assert_eq!(labels[labels::NODE], "worker-1");
        assert!(labels.contains_key(labels::RUN));
    }
}
