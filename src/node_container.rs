//! A node's container on the host engine: how it is configured, created,
//! started and inspected.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Mount, MountType, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;

use crate::addressing::Ipv4Net;
use crate::config::NodeSettings;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message, is_conflict, is_not_found};
use crate::labels;
use crate::naming::{ClusterName, NodeName, Role};
use crate::tls::NODE_TLS_DIR;

/// Prepares a container to run its own engine (see assets/node-entrypoint.sh):
/// every node runs it, whatever its image's own entrypoint; it is also the
/// entrypoint of the image `node-image build` makes, so that the image works
/// without swarmlab too.
pub(crate) const ENTRYPOINT_SCRIPT: &str = include_str!("../assets/node-entrypoint.sh");

/// The one address the plain-HTTP API of an --insecure node answers.
const INSECURE_API_FROM: &str = "SWARMLAB_API_FROM";

/// The node engine's TLS port inside the container.
pub(crate) const API_PORT: &str = "2376/tcp";
pub(crate) const API_PORT_NUMBER: u16 = 2376;

/// How many threads at once run the Go code of a node's dockerd and
/// containerd (not its containers). Every node boots at the same time, so
/// the machine is oversubscribed: with one per core each, the runtimes spin
/// and contend for locks and GC work instead of booting. Measured on 2
/// cores, medians of interleaved rounds: 1+10 create 4.9 s instead of 6.1,
/// 1+3 2.0 s instead of 2.15. On the first manager it also keeps swarm init
/// from hitting swarmkit's 500 ms retry (its control-socket health check
/// racing raft start-up): 0 of 10 creates did instead of 5 of 10. A node's
/// engine idles most of the time, and one core is plenty for a lab.
const NODE_GOMAXPROCS: u32 = 1;

/// The Go heap target of a node's dockerd and containerd, and of every
/// helper process dockerd re-executes itself as (about eight per node when
/// it joins the ingress network). Measured idle memory, largest node:
/// 42 MiB for a manager at 25 (54 at Go's default 100), 37 MiB for a worker
/// at 50 (34 at 25, 45 at 100). Workers at 50 rather than 25 save about
/// 0.8 CPU-seconds per 1+10 create, most of it in those helpers.
fn node_gogc(role: Role) -> u32 {
    match role {
        Role::Manager => 25,
        Role::Worker => 50,
    }
}

/// Everything that decides what a node container looks like.
#[derive(Debug, Clone)]
pub(crate) struct NodePlan {
    pub(crate) cluster: ClusterName,
    pub(crate) node: NodeName,
    pub(crate) image: String,
    /// The cluster network's ID: its name can be ambiguous for a moment,
    /// while a concurrent create of the same name backs off.
    pub(crate) network: String,
    pub(crate) address: Ipv4Addr,
    /// The host's own address on the cluster network.
    pub(crate) gateway: Ipv4Addr,
    /// Publish the engine API on 127.0.0.1 (always for managers: the docker
    /// CLI talks to them there); else swarmlab reaches it at `address`.
    pub(crate) publish_api: bool,
    /// A fixed host port for the engine API; the engine picks one when None.
    pub(crate) api_port: Option<u16>,
    /// Limits, dockerd arguments and swarm labels from a cluster file.
    pub(crate) settings: NodeSettings,
    /// The engine API answers plain HTTP, without TLS (--insecure).
    pub(crate) insecure: bool,
    /// The operation that makes the container and its volume.
    pub(crate) run: labels::Run,
}

/// What every node plan of one cluster shares.
#[derive(Debug, Clone)]
pub(crate) struct ClusterFacts<'a> {
    pub(crate) cluster: &'a ClusterName,
    pub(crate) image: &'a str,
    pub(crate) network_id: &'a str,
    pub(crate) subnet: &'a Ipv4Net,
    /// This process reaches the cluster network directly (see [`direct_api`]):
    /// workers then go without a published API port.
    pub(crate) direct_api: bool,
    pub(crate) insecure: bool,
    /// The operation that makes the nodes.
    pub(crate) run: &'a labels::Run,
}

impl NodePlan {
    /// The plan of `node`: its address follows from its name; managers
    /// always publish their API on 127.0.0.1 (the docker CLI talks to
    /// them there), workers only where the cluster network is not reached
    /// directly.
    pub(crate) fn new(facts: &ClusterFacts, node: NodeName, settings: NodeSettings, api_port: Option<u16>) -> Self {
        NodePlan {
            cluster: facts.cluster.clone(),
            node,
            image: facts.image.to_string(),
            network: facts.network_id.to_string(),
            address: crate::addressing::node_address(facts.subnet, node),
            gateway: facts.subnet.gateway(),
            publish_api: node.role == Role::Manager || !facts.direct_api,
            api_port,
            settings,
            insecure: facts.insecure,
            run: facts.run.clone(),
        }
    }

    pub(crate) fn container(&self) -> String {
        self.node.container(&self.cluster)
    }
}

/// Whether workers on `network` go without a published API port: only where
/// this process reaches the network's containers at their own addresses
/// (the engine is local and the network's bridge is in our network
/// namespace), which spares the host a proxy process and firewall rules
/// per node. Not on Docker Desktop, rootless or remote engines.
pub(crate) fn direct_api(engine: &HostEngine, network: &bollard::models::NetworkInspect) -> bool {
    let certified = network
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(labels::DIRECT_API));
    certified && engine.is_local() && bridge_is_here(network.id.as_deref().unwrap_or_default())
}

/// Whether the bridge of the network with `network_id` is an interface here.
pub(crate) fn bridge_is_here(network_id: &str) -> bool {
    network_id
        .get(..12)
        .is_some_and(|id| std::path::Path::new(&format!("/sys/class/net/br-{id}")).exists())
}

/// How a node container runs, as its `io.swarmlab.security` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeSecurity {
    /// `--privileged`.
    Privileged,
    /// The explicit capability profile, where the engine refuses --privileged.
    Capabilities,
}

impl NodeSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeSecurity::Privileged => "privileged",
            NodeSecurity::Capabilities => "capabilities",
        }
    }

    pub(crate) fn from_label(value: &str) -> Option<Self> {
        [NodeSecurity::Privileged, NodeSecurity::Capabilities]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// `auto` (the default), `try` or `no`: see `Security::guess`.
pub(crate) const PRIVILEGED_ENV: &str = "SWARMLAB_PRIVILEGED";

/// What `SWARMLAB_PRIVILEGED` asks for: try --privileged (Some(true)),
/// never (Some(false)), or let the engine's bounding set decide (None).
pub(crate) fn privileged_choice() -> Result<Option<bool>> {
    match std::env::var(PRIVILEGED_ENV).unwrap_or_default().as_str() {
        "" | "auto" => Ok(None),
        "try" => Ok(Some(true)),
        "no" => Ok(Some(false)),
        other => Err(Error::invalid(format!(
            "{PRIVILEGED_ENV}={other} is not understood: use auto, try or no"
        ))),
    }
}

/// Whether node containers run `--privileged`, shared by the nodes of one
/// operation: the first node that finds it refused spares the others the try.
#[derive(Debug)]
pub(crate) struct Security {
    privileged_refused: AtomicBool,
    /// Not asked for, by choice rather than because the engine refuses it.
    declined: bool,
}

impl Security {
    /// Starts from what the host engine most likely allows. Where runc may
    /// not grant every capability (see ../shared/ENVIRONMENT.md), a
    /// privileged container cannot start; the capability bounding set of
    /// the local engine's process tells that in advance.
    ///
    /// `SWARMLAB_PRIVILEGED` overrides the guess: `try` asks for
    /// --privileged whatever the bounding set says (and still falls back
    /// when refused), `no` never asks for it.
    pub(crate) fn guess(engine: &HostEngine) -> Result<Self> {
        let (refused, declined) = match privileged_choice()? {
            Some(true) => (false, false),
            Some(false) => (true, true),
            None => (engine.is_local() && !full_bounding_set(), false),
        };
        Ok(Security {
            privileged_refused: AtomicBool::new(refused),
            declined,
        })
    }

    fn privileged(&self) -> bool {
        !self.privileged_refused.load(Ordering::Relaxed)
    }

    fn refuse_privileged(&self) {
        self.privileged_refused.store(true, Ordering::Relaxed);
    }

    /// How the last node was run, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        if self.privileged() {
            "run privileged"
        } else if self.declined {
            "run with explicit capabilities (SWARMLAB_PRIVILEGED=no)"
        } else {
            "run with explicit capabilities (the engine refuses --privileged)"
        }
    }
}

/// Reads the engine's capability bounding set (falling back to our own) and
/// compares it with every capability the kernel knows.
fn full_bounding_set() -> bool {
    let read_bounding = |pid: &str| -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("CapBnd:"))?;
        u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
    };
    let engine_pid = std::fs::read_to_string("/var/run/docker.pid").ok();
    let bounding = engine_pid
        .as_deref()
        .and_then(|pid| read_bounding(pid.trim()))
        .or_else(|| read_bounding("self"));
    let last_cap: Option<u32> = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    match (bounding, last_cap) {
        (Some(bounding), Some(last)) if last < 64 => {
            let all = if last == 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 };
            bounding & all == all
        }
        _ => true,
    }
}

/// The dockerd arguments of every node: the local socket for `docker exec
/// NODE docker ...`, and TLS-only TCP for swarmlab and the docker CLI (or
/// plain TCP, which dockerd delays its start-up for, with --insecure).
fn dockerd_args(insecure: bool) -> Vec<String> {
    if insecure {
        return vec![
            "--host=unix:///var/run/docker.sock".into(),
            "--host=tcp://0.0.0.0:2376".into(),
            "--tls=false".into(),
        ];
    }
    vec![
        "--host=unix:///var/run/docker.sock".into(),
        "--host=tcp://0.0.0.0:2376".into(),
        "--tlsverify".into(),
        format!("--tlscacert={NODE_TLS_DIR}/ca.pem"),
        format!("--tlscert={NODE_TLS_DIR}/cert.pem"),
        format!("--tlskey={NODE_TLS_DIR}/key.pem"),
    ]
}

fn container_config(plan: &NodePlan, privileged: bool) -> ContainerCreateBody {
    let mut env = vec![
        crate::tls::STDIN_ENV.to_string(),
        format!("GOGC={}", node_gogc(plan.node.role)),
        format!("GOMAXPROCS={NODE_GOMAXPROCS}"),
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
            dockerd_args(plan.insecure)
                .into_iter()
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

/// Creates the node's volume and container, without starting it.
pub(crate) async fn prepare(engine: &HostEngine, plan: &NodePlan, security: &Security) -> Result<()> {
    let name = plan.container();
    let volume_name = plan.node.volume(&plan.cluster);
    let mut volume_labels = labels::node(&plan.cluster, plan.node);
    plan.run.mark(&mut volume_labels);
    let volume = VolumeCreateRequest {
        name: Some(volume_name.clone()),
        labels: Some(volume_labels),
        ..Default::default()
    };
    // The engine hands back a volume that exists already instead of making
    // one: a node must never mount (nor its rollback delete) a volume this
    // operation did not make.
    let volume = engine
        .docker
        .create_volume(volume)
        .await
        .with_context(|| format!("cannot create the volume of {name}"))?;
    if !plan.run.made(Some(&volume.labels)) {
        let whose = if volume.labels.contains_key(labels::CLUSTER) {
            "made by another swarmlab operation"
        } else {
            "not swarmlab's"
        };
        return Err(Error::NameTaken {
            kind: "volume",
            name: volume_name.clone(),
            whose: whose.to_string(),
            fix: format!("remove it (docker volume rm {volume_name}) or choose another cluster name"),
        });
    }
    create(engine, plan, security.privileged()).await
}

/// How long a start waits for a network name to be unambiguous again.
const AMBIGUITY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts a prepared node container; where the engine refuses --privileged,
/// makes it again with the explicit capability profile and starts that.
pub(crate) async fn start(engine: &HostEngine, plan: &NodePlan, security: &Security, identity: &[u8]) -> Result<()> {
    let name = plan.container();
    let began = std::time::Instant::now();
    loop {
        match engine.docker.start_container(&name, None).await {
            Ok(()) => {
                tracing::debug!(container = %name, elapsed = ?began.elapsed(), "container started");
                // Its entrypoint waits for the identity before dockerd starts.
                return engine.hand_over(&name, identity).await;
            }
            Err(e) if refuses_privileged(&e) && was_privileged(engine, &name).await => {
                security.refuse_privileged();
                remove(engine, &name).await?;
                create(engine, plan, false).await?;
            }
            // A concurrent create of the same name made a network of the
            // same name after this one's claim (see cluster::create); it
            // removes it at once, and until then the engine cannot tell
            // which network a starting container means.
            Err(e) if engine_message(&e).contains("is ambiguous") && began.elapsed() < AMBIGUITY_WAIT => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(start_error(plan, e)),
        }
    }
}

async fn was_privileged(engine: &HostEngine, name: &str) -> bool {
    engine
        .docker
        .inspect_container(name, None)
        .await
        .ok()
        .and_then(|info| info.host_config?.privileged)
        .unwrap_or(false)
}

async fn create(engine: &HostEngine, plan: &NodePlan, privileged: bool) -> Result<()> {
    let name = plan.container();
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    engine
        .docker
        .create_container(Some(options), container_config(plan, privileged))
        .await
        .map_err(|e| {
            if is_conflict(&e) {
                Error::NameTaken {
                    kind: "container",
                    name: name.clone(),
                    whose: "not a node of this cluster".into(),
                    fix: format!("rename or remove it (docker rm -f {name}), or choose another cluster name"),
                }
            } else {
                Error::Engine {
                    context: format!("cannot create container {name}"),
                    source: e,
                }
            }
        })?;
    Ok(())
}

fn refuses_privileged(error: &bollard::errors::Error) -> bool {
    let message = engine_message(error);
    message.contains("apply caps") || message.contains("operation not permitted")
}

fn start_error(plan: &NodePlan, error: bollard::errors::Error) -> Error {
    let message = engine_message(&error);
    if let Some(port) = plan
        .api_port
        .filter(|_| message.contains("allocated") || message.contains("address already in use"))
    {
        return Error::PortUnavailable(format!(
            "host port 127.0.0.1:{port} is already in use: choose another --api-port or leave it out"
        ));
    }
    Error::NodeFailed {
        node: plan.node.hostname(),
        reason: format!("its container did not start: {message}"),
    }
}

/// Removes a container and its anonymous volumes; a missing one is fine.
pub(crate) async fn remove(engine: &HostEngine, name: &str) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match engine.docker.remove_container(name, Some(options)).await {
        Err(e) if !is_not_found(&e) => Err(e).with_context(|| format!("cannot remove container {name}")),
        _ => Ok(()),
    }
}

/// The host port that reaches the node's engine API.
pub(crate) async fn published_api_port(engine: &HostEngine, name: &str) -> Result<u16> {
    let info = engine
        .docker
        .inspect_container(name, None)
        .await
        .with_context(|| format!("cannot inspect container {name}"))?;
    info.network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(API_PORT).cloned().flatten())
        .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port?.parse().ok()))
        .ok_or_else(|| Error::Other(format!("container {name} publishes no engine API port: is it running?")))
}

/// Fails with the end of the container's log when it is no longer running,
/// or has had to be restarted. For containers being brought up.
pub(crate) async fn ensure_running(engine: &HostEngine, name: &str, node: &str) -> Result<()> {
    let info = engine
        .docker
        .inspect_container(name, None)
        .await
        .with_context(|| format!("cannot inspect container {name}"))?;
    let state = info.state.unwrap_or_default();
    // A restart count above zero means it died once already, even if the
    // restart policy has it running again at this instant.
    let restarted = info.restart_count.unwrap_or(0) > 0;
    if state.running == Some(true) && state.restarting != Some(true) && !restarted {
        return Ok(());
    }
    let tail = log_tail(engine, name, 3).await;
    Err(Error::NodeFailed {
        node: node.to_string(),
        reason: format!(
            "its container stopped (exit code {}) before its engine answered{}",
            state.exit_code.unwrap_or_default(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ),
    })
}

/// Waits, by following the container's log, until its dockerd says it
/// listens on the TCP API port: no polling, no TLS handshakes against an
/// engine that is still starting. Fails when the log ends first (the
/// container stopped).
pub(crate) async fn wait_api_listening(engine: &HostEngine, name: &str, node: &str) -> Result<()> {
    let options = LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).build();
    let mut log = engine.docker.logs(name, Some(options));
    let mut pending = String::new();
    while let Some(Ok(chunk)) = log.next().await {
        pending.push_str(&chunk.to_string());
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if line.contains("API listen on") && line.contains(&format!(":{API_PORT_NUMBER}")) {
                return Ok(());
            }
        }
    }
    ensure_running(engine, name, node).await?;
    Err(Error::NodeFailed {
        node: node.to_string(),
        reason: "its log ended before its engine listened".into(),
    })
}

/// The last lines a container printed, joined on one line.
pub(crate) async fn log_tail(engine: &HostEngine, name: &str, lines: usize) -> String {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = engine.docker.logs(name, Some(options));
    let mut text = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push(chunk.to_string().trim().to_string());
    }
    crate::error::one_line(&text.join(" / "))
}
