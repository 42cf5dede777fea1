//! Creating a cluster, as an ordered list of actions: check, choose the node
//! image, make the TLS identity and the network, then bring up every node in
//! parallel (start its container, wait for its engine, init or join the
//! swarm) and wait until the manager lists them all Ready. Whatever fails or
//! is interrupted is rolled back unless the caller keeps it.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use futures_util::future::try_join_all;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use crate::addressing::{self, Ipv4Net};
use crate::engine::{self, HostEngine};
use crate::error::{Context, Error, Result, engine_message};
use crate::labels;
use crate::naming::{self, ClusterName, NodeName, Role};
use crate::node_container::{self, NodePlan, Security};
use crate::node_image;
use crate::progress::Progress;
use crate::swarm::{self, JoinTokens};
use crate::tls::ClusterTls;

use super::{cluster_names, delete};

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub name: ClusterName,
    pub managers: u32,
    pub workers: u32,
    /// The node image; None picks one (see `node_image::resolve`).
    pub image: Option<String>,
    /// Swarm's dispatcher heartbeat; None keeps Swarm's default (5 s).
    pub heartbeat: Option<Duration>,
    /// How long to wait for the whole cluster to be Ready.
    pub wait: Duration,
    /// Keep what was made when creation fails.
    pub retain: bool,
    /// A fixed host port for the first manager's engine API.
    pub api_port: Option<u16>,
}

impl CreateOptions {
    pub fn new(name: ClusterName) -> Self {
        CreateOptions {
            name,
            managers: 1,
            workers: 3,
            image: None,
            heartbeat: None,
            wait: Duration::from_secs(120),
            retain: false,
            api_port: None,
        }
    }
}

/// What `create` made.
#[derive(Debug, Clone)]
pub struct Created {
    pub name: ClusterName,
    pub image: String,
    pub subnet: String,
    pub nodes: Vec<String>,
    pub security: &'static str,
    pub elapsed: Duration,
}

/// Creates a cluster. `interrupt` resolving (e.g. on Ctrl-C) stops the work
/// and rolls it back like a failure.
pub async fn create(
    engine: &HostEngine,
    options: &CreateOptions,
    progress: &dyn Progress,
    interrupt: impl Future<Output = ()>,
) -> Result<Created> {
    naming::check_counts(options.managers, options.workers)?;
    if cluster_names(engine).await?.contains(&options.name) {
        return Err(Error::ClusterExists(options.name.to_string()));
    }
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = bring_up(engine, options, progress, started) => outcome,
        () = interrupt => Err(Error::Interrupted),
    };
    match outcome {
        Ok(created) => Ok(created),
        Err(error) => {
            if options.retain {
                progress.note(&format!(
                    "kept what was created (--retain); remove it with `swarmlab delete --name {}`",
                    options.name
                ));
            } else {
                progress.note("rolling back: removing what was created");
                if let Err(cleanup) = delete::remove_everything(engine, &options.name).await {
                    progress.note(&format!("rollback incomplete: {cleanup}"));
                }
            }
            Err(error)
        }
    }
}

async fn bring_up(
    engine: &HostEngine,
    options: &CreateOptions,
    progress: &dyn Progress,
    started: Instant,
) -> Result<Created> {
    let deadline = started + options.wait;
    let name = &options.name;
    let (image, subnet, tls) = tokio::try_join!(
        node_image::resolve(engine, options.image.as_deref(), progress),
        create_network(engine, name),
        async { ClusterTls::create(name) },
    )?;
    let tls_env = tls.node_env()?;
    let security = Security::guess(engine);

    let nodes: Vec<NodeName> = (1..=options.managers)
        .map(|i| NodeName::new(Role::Manager, i))
        .chain((1..=options.workers).map(|i| NodeName::new(Role::Worker, i)))
        .collect();
    let first_manager = NodeName::new(Role::Manager, 1);
    let leader_address = addressing::node_address(&subnet, first_manager);
    let (tokens_tx, tokens_rx) = watch::channel::<Option<JoinTokens>>(None);
    let manager_joins = Mutex::new(());
    let (launched_tx, launched_rx) = watch::channel(false);
    let context = NodeContext {
        engine,
        tls: &tls,
        tls_env: &tls_env,
        security: &security,
        progress,
        deadline,
        started,
    };

    let bring_up_node = |node: NodeName| {
        let plan = NodePlan {
            cluster: name.clone(),
            node,
            image: image.clone(),
            network: name.network(),
            address: addressing::node_address(&subnet, node),
            api_port: options.api_port.filter(|_| node == first_manager),
        };
        let (context, tokens_tx, mut tokens_rx, manager_joins) =
            (&context, &tokens_tx, tokens_rx.clone(), &manager_joins);
        let (launched_tx, mut launched_rx) = (&launched_tx, launched_rx.clone());
        async move {
            let host = plan.node.hostname();
            if plan.node == first_manager {
                context.launch(&plan).await?;
                launched_tx.send_replace(true);
            } else {
                // The first manager is on the critical path (everyone waits
                // for its swarm init): let the engine start it first.
                let _ = launched_rx.wait_for(|launched| *launched).await;
                context.launch(&plan).await?;
            }
            let docker = context.wait_engine(&plan).await?;
            if plan.node == first_manager {
                context.progress.step(&host, "initializing the swarm");
                let tokens = swarm::init(&docker, plan.address, options.heartbeat)
                    .await
                    .map_err(|e| node_failed(&plan, e))?;
                tokens_tx.send_replace(Some(tokens));
                return Ok(docker);
            }
            context.progress.step(&host, "waiting for the swarm");
            let tokens = tokens_rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Error::Other("the first manager never initialized the swarm".into()))?
                .clone()
                .expect("waited for Some");
            let _serialized = match plan.node.role {
                // Raft takes managers one at a time; joining them together can fail.
                Role::Manager => Some(manager_joins.lock().await),
                Role::Worker => None,
            };
            context.progress.step(&host, "joining the swarm");
            let token = match plan.node.role {
                Role::Manager => &tokens.manager,
                Role::Worker => &tokens.worker,
            };
            swarm::join(&docker, plan.address, leader_address, token)
                .await
                .map_err(|e| node_failed(&plan, e))?;
            Ok::<_, Error>(docker)
        }
    };
    let engines = try_join_all(nodes.iter().map(|&node| bring_up_node(node))).await?;

    let hostnames: BTreeSet<String> = nodes.iter().map(NodeName::hostname).collect();
    progress.note("waiting for every node to be Ready");
    let leader: &Docker = &engines[0];
    swarm::wait_ready(leader, &hostnames, deadline, options.wait).await?;
    for host in &hostnames {
        progress.done(host, "ready");
    }
    Ok(Created {
        name: name.clone(),
        image,
        subnet: subnet.to_string(),
        nodes: hostnames.into_iter().collect(),
        security: security.describe(),
        elapsed: started.elapsed(),
    })
}

struct NodeContext<'a> {
    engine: &'a HostEngine,
    tls: &'a ClusterTls,
    tls_env: &'a [String],
    security: &'a Security,
    progress: &'a dyn Progress,
    deadline: Instant,
    started: Instant,
}

impl NodeContext<'_> {
    async fn launch(&self, plan: &NodePlan) -> Result<()> {
        self.progress.step(&plan.node.hostname(), "starting container");
        node_container::launch(self.engine, plan, self.security, self.tls_env).await
    }

    /// Waits until the node's engine answers.
    async fn wait_engine(&self, plan: &NodePlan) -> Result<Docker> {
        let host = plan.node.hostname();
        self.progress.step(&host, "waiting for its engine");
        let container = plan.container();
        let port = match node_container::published_api_port(self.engine, &container).await {
            Ok(port) => port,
            Err(error) => {
                // No port is published while the container is not running: say why.
                node_container::ensure_running(self.engine, &container, &host).await?;
                return Err(error);
            }
        };
        let client = engine::node_client(port, self.tls.client_dir())?;
        let alive = || node_container::ensure_running(self.engine, &container, &host);
        let docker = engine::wait_ping(client, self.deadline, alive)
            .await
            .map_err(|e| match e {
                Error::Other(reason) => Error::NodeFailed {
                    node: host.clone(),
                    reason,
                },
                other => other,
            })?;
        tracing::debug!(node = %host, after = ?self.started.elapsed(), "engine answers");
        Ok(docker)
    }
}

fn node_failed(plan: &NodePlan, error: Error) -> Error {
    Error::NodeFailed {
        node: plan.node.hostname(),
        reason: error.to_string(),
    }
}

/// Creates the cluster's bridge network on the first free subnet of the pool.
async fn create_network(engine: &HostEngine, cluster: &ClusterName) -> Result<Ipv4Net> {
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
            labels: Some(labels::cluster(cluster)),
            options: Some(HashMap::new()),
            ..Default::default()
        };
        match engine.docker.create_network(request).await {
            Ok(_) => return Ok(subnet),
            // Another network took it since we listed them: try the next.
            Err(e) if engine_message(&e).contains("overlap") => continue,
            Err(e) => return Err(e).context("cannot create the cluster network"),
        }
    }
    Err(Error::SubnetExhausted { pool: pool.to_string() })
}
