//! Creating a cluster, as an ordered list of actions: check, choose the node
//! image, make the TLS identity and the network, then bring up every node in
//! parallel (start its container, wait for its engine, init or join the
//! swarm) and wait until the manager lists them all Ready. Whatever fails or
//! is interrupted is rolled back unless the caller keeps it.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::addressing::{self, Ipv4Net};
use crate::config::{Forward, Settings};
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result, engine_message};
use crate::images;
use crate::labels::{self, Run};
use crate::naming::{self, ClusterName, NodeName, Role};
use crate::node_container::{self, NodePlan};
use crate::node_image;
use crate::progress::Progress;
use crate::swarm::{self, JoinTokens};
use crate::tls::ClusterTls;

use crate::cluster::{self, Launcher, cluster_names};

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
    /// Per-role and per-node settings from a cluster file.
    pub settings: Settings,
    /// Images on the host engine to load into every node.
    pub images: Vec<String>,
    /// Host ports forwarded to ports of nodes.
    pub forwards: Vec<Forward>,
    /// Node engine APIs without TLS: anyone on this machine can use them.
    pub insecure: bool,
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
            settings: Settings::default(),
            images: Vec::new(),
            forwards: Vec::new(),
            insecure: false,
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
    node_container::privileged_choice()?;
    if cluster_names(engine).await?.contains(&options.name) {
        return Err(Error::ClusterExists(options.name.to_string()));
    }
    // The nodes share this kernel's limits only where the engine is local.
    if engine.is_local()
        && let Some(raised) = crate::inotify::ensure_room(options.managers + options.workers)?
    {
        progress.note(&raised);
    }
    let cancel = CancellationToken::new();
    let run = Run::new();
    // Set once this run holds the name (its network won): from then on the
    // TLS folder of that name is this run's too.
    let claimed = AtomicBool::new(false);
    let work = bring_up(engine, options, progress, cancel.clone(), &run, &claimed);
    tokio::pin!(work);
    let outcome = tokio::select! {
        outcome = &mut work => outcome,
        () = interrupt => {
            // Let work on the host engine finish its current step, so that
            // the rollback finds everything.
            cancel.cancel();
            let _ = work.await;
            Err(Error::Interrupted)
        }
    };
    if outcome.is_err() {
        if options.retain {
            progress.note(&format!(
                "kept what was created (--retain); remove it with `swarmlab delete --name {}`",
                options.name
            ));
        } else {
            progress.note("rolling back: removing what was created");
            let mut cleanup = cluster::remove_run(engine, &options.name, &run).await.map(drop);
            if claimed.load(Ordering::SeqCst) {
                cleanup = cleanup.and(ClusterTls::remove(engine, &options.name).await);
            }
            if let Err(cleanup) = cleanup {
                progress.note(&format!("rollback incomplete: {cleanup}"));
            }
        }
    }
    outcome
}

async fn bring_up(
    engine: &HostEngine,
    options: &CreateOptions,
    progress: &dyn Progress,
    cancel: CancellationToken,
    run: &Run,
    claimed: &AtomicBool,
) -> Result<Created> {
    let started = Instant::now();
    let name = &options.name;
    let mut labels = network_labels(options);
    run.mark(&mut labels);
    // Both run to the end even when one fails: a network whose creation
    // was abandoned mid-request could outlive the rollback.
    let (image, network) = tokio::join!(
        node_image::resolve(engine, options.image.as_deref(), progress),
        create_network(engine, name, labels),
    );
    let (subnet, network_id) = network?;
    claim(engine, name, &network_id).await?;
    claimed.store(true, Ordering::SeqCst);
    let image = image?;
    let tls = ClusterTls::create(engine, name, &subnet).await?;
    let direct_api = engine.is_local() && node_container::bridge_is_here(&network_id);
    tracing::debug!(elapsed = ?started.elapsed(), "image, network and certificates ready");
    let launcher = Launcher::new(engine, &tls, progress, started + options.wait, cancel, run.clone())?;

    let nodes: Vec<NodeName> = (1..=options.managers)
        .map(|i| NodeName::new(Role::Manager, i))
        .chain((1..=options.workers).map(|i| NodeName::new(Role::Worker, i)))
        .collect();
    let first_manager = NodeName::new(Role::Manager, 1);
    let leader_address = addressing::node_address(&subnet, first_manager);
    let (tokens_tx, tokens_rx) = watch::channel::<Option<JoinTokens>>(None);
    // How many node containers have been started.
    let (launched_tx, launched_rx) = watch::channel(0usize);
    let manager_joins = Mutex::new(());
    let (first_start_sent, first_start_sent_rx) = watch::channel(false);

    let bring_up_node = |node: NodeName| {
        let plan = NodePlan {
            cluster: name.clone(),
            node,
            image: image.clone(),
            network: network_id.clone(),
            address: addressing::node_address(&subnet, node),
            gateway: subnet.gateway(),
            publish_api: node.role == Role::Manager || !direct_api,
            api_port: options.api_port.filter(|_| node == first_manager),
            settings: options.settings.for_node(node),
            insecure: options.insecure,
            run: run.clone(),
        };
        let (launcher, tokens_tx, mut tokens_rx, manager_joins) =
            (&launcher, &tokens_tx, tokens_rx.clone(), &manager_joins);
        let (launched_tx, first_start_sent, mut first_start_sent_rx) =
            (&launched_tx, &first_start_sent, first_start_sent_rx.clone());
        async move {
            let host = plan.node.hostname();
            // The first manager is the critical path (its engine, swarm init,
            // then every join waits on it): it is made alone (a few tens of
            // milliseconds) and its start goes to the host engine ahead of
            // the others.
            if plan.node == first_manager {
                launcher.prepare(&plan).await?;
                first_start_sent.send_replace(true);
            } else {
                launcher
                    .unless_cancelled(async {
                        let sent = first_start_sent_rx.wait_for(|sent| *sent).await;
                        sent.map(|_| ()).map_err(|_| Error::Interrupted)
                    })
                    .await?;
                launcher.prepare(&plan).await?;
            }
            launcher.start(&plan).await?;
            launched_tx.send_modify(|launched| *launched += 1);
            let docker = launcher.wait_engine(&plan).await?;
            if plan.node == first_manager {
                launcher.progress.step(&host, "initializing the swarm");
                swarm::init(&docker, plan.address, options.heartbeat, |tokens| {
                    tokens_tx.send_replace(Some(tokens));
                })
                .await
                .map_err(|e| node_failed(&plan, e))?;
                return Ok(docker);
            }
            launcher.progress.step(&host, "waiting for the swarm");
            let tokens = launcher
                .unless_cancelled(async {
                    let tokens = tokens_rx.wait_for(Option::is_some).await;
                    tokens
                        .map(|t| t.clone().expect("waited for Some"))
                        .map_err(|_| Error::Other("the first manager never initialized the swarm".into()))
                })
                .await?;
            let _serialized = match plan.node.role {
                // Raft takes managers one at a time; joining them together can fail.
                Role::Manager => Some(manager_joins.lock().await),
                Role::Worker => None,
            };
            launcher.check()?;
            launcher.progress.step(&host, "joining the swarm");
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
    // The port forwarder starts once the host engine has started every node
    // (so as not to hold them up there), while their engines boot; it
    // waits for the swarm by itself.
    let mut all_launched = launched_rx.clone();
    let forwarder = async {
        launcher
            .unless_cancelled(async { Ok(all_launched.wait_for(|launched| *launched == nodes.len()).await.is_ok()) })
            .await?;
        crate::forwarder_container::ensure(engine, name, &tls, run).await
    };
    let (engines, forwarder) = tokio::join!(launcher.all(nodes.iter().map(|&node| bring_up_node(node))), forwarder);
    let engines = engines?;
    forwarder?;

    let hostnames: BTreeSet<String> = nodes.iter().map(NodeName::hostname).collect();
    progress.note("waiting for every node to be Ready");
    let leader: &Docker = &engines[0];
    launcher
        .unless_cancelled(swarm::wait_ready(leader, &hostnames, launcher.deadline, options.wait))
        .await?;
    for node in &nodes {
        let labels = options.settings.for_node(*node).labels;
        if !labels.is_empty() {
            launcher.check()?;
            swarm::label_node(leader, &node.hostname(), &labels).await?;
        }
    }
    for host in &hostnames {
        progress.done(host, "ready");
    }
    if !options.images.is_empty() {
        launcher.check()?;
        progress.note(&format!("loading {} into every node", options.images.join(", ")));
        let cluster = cluster::Cluster::open(engine, name).await?;
        let loads = images::load(&cluster, &options.images, None, progress).await?;
        if let Some(failed) = loads.iter().find(|l| l.outcome == "failed") {
            return Err(Error::NodeFailed {
                node: failed.node.clone(),
                reason: format!("loading images failed: {}", failed.detail),
            });
        }
    }
    Ok(Created {
        name: name.clone(),
        image,
        subnet: subnet.to_string(),
        nodes: hostnames.into_iter().collect(),
        security: launcher.security.describe(),
        elapsed: started.elapsed(),
    })
}

fn node_failed(plan: &NodePlan, error: Error) -> Error {
    Error::NodeFailed {
        node: plan.node.hostname(),
        reason: error.to_string(),
    }
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
    let age = |created: Option<&str>| created.and_then(|c| humantime::parse_rfc3339_weak(c).ok());
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
