//! Node images per engine version, clusters that mix them, and a rolling
//! upgrade from one to another under load. scripts/setup builds the two
//! images these use: swarmlab/node:latest (engine 20.10) and
//! swarmlab/node:28.5.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Test, TestCluster, deploy, free_port, http_get, json, node_ids, stdout, unique};

/// Each node's engine version, as the swarm reports it.
fn engines(cluster: &TestCluster) -> Vec<(String, String)> {
    let inspect = cluster.inspect();
    inspect["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["hostname"].as_str().unwrap().to_string(),
                n["engine_version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn node_images_are_listed_with_the_engine_their_dockerd_reports() {
    let listed = json(&Test::new().args(["node-image", "ls", "--json"]).run());
    let engine_of = |tag: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|image| image["tags"].as_array().unwrap().iter().any(|t| t == tag))
            .map(|image| image["engine"].as_str().unwrap_or_default().to_string())
    };
    assert!(
        engine_of("swarmlab/node:28.5").unwrap().starts_with("28.5."),
        "{listed}"
    );
    assert!(
        engine_of("swarmlab/node:latest").unwrap().starts_with("20.10."),
        "{listed}"
    );
    let table = stdout(&Test::new().args(["node-image", "ls"]).run());
    assert!(
        table.starts_with("IMAGE") && table.contains("swarmlab/node:28.5"),
        "{table}"
    );
    // An engine no Debian suite carries: said at once, nothing built.
    Test::new()
        .args(["create", "--name", &unique("none"), "--engine", "27"])
        .fails_with(2, "no Debian suite carries Docker engine 27")
        .run();
    Test::new()
        .args(["node-image", "build", "--engine", "2x"])
        .fails_with(2, "invalid engine version")
        .run();
}

#[test]
fn the_seed_flow_runs_on_nodes_of_a_current_engine() {
    let port = free_port().to_string();
    let name = unique("demo28");
    let report = json(
        &Test::new()
            .args([
                "demo",
                "--name",
                &name,
                "--engine",
                "28.5",
                "--port",
                &port,
                "--replicas",
                "6",
                "--json",
            ])
            .run(),
    );
    let stages = crate::support::demo_stages(&report);
    for stage in [
        "create",
        "first answer",
        "scale to 6",
        "crash detection",
        "node restart",
        "rebalance",
    ] {
        assert!(stages.iter().any(|s| s.contains(stage)), "{stage} in {stages:?}");
    }
    assert!(report["spread"].as_object().unwrap().len() > 1, "{report}");
}

#[test]
fn a_mixed_cluster_forms_and_runs_a_service_on_every_node() {
    let file = std::env::temp_dir().join(format!("{}.toml", unique("mixed")));
    std::fs::write(
        &file,
        "workers = 2\nengine = \"20.10\"\n\n[role.worker]\nengine = \"28.5\"\n",
    )
    .unwrap();
    let cluster = TestCluster::create("mixed", &["--config", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    let versions = engines(&cluster);
    for (host, version) in &versions {
        let expected = if host.starts_with("manager") { "20.10." } else { "28.5." };
        assert!(version.starts_with(expected), "{host} runs {version}: {versions:?}");
    }
    let listed = json(&Test::new().args(["ls", "--json"]).run());
    let this = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster.name.as_str())
        .unwrap();
    assert_eq!(
        this["engines"].as_array().unwrap().len(),
        2,
        "ls shows it mixed: {this}"
    );

    // A new worker takes the workers' engine; --engine picks another.
    Test::new().args(["node", "add", "--name", &cluster.name]).run();
    Test::new()
        .args([
            "node",
            "add",
            "--name",
            &cluster.name,
            "--image",
            "swarmlab/node:latest",
        ])
        .run();
    let versions = engines(&cluster);
    let of = |host: &str| versions.iter().find(|(h, _)| h == host).unwrap().1.clone();
    assert!(of("worker-3").starts_with("28.5."), "{versions:?}");
    assert!(of("worker-4").starts_with("20.10."), "{versions:?}");

    Test::new()
        .args(["image", "load", "swarmlab/quotes:latest", "--name", &cluster.name])
        .run();
    cluster.docker([
        "service",
        "create",
        "--name",
        "everywhere",
        "--detach=false",
        "--mode",
        "global",
        "swarmlab/quotes:latest",
    ]);
    let running = cluster.tasks("everywhere", "{{.Node}} {{.CurrentState}}");
    for host in ["manager-1", "worker-1", "worker-2", "worker-3", "worker-4"] {
        assert!(
            running.lines().any(|l| l.starts_with(&format!("{host} Running"))),
            "a task runs on {host}: {running}"
        );
    }
    cluster.delete();
}

/// Requests to localhost:`port` every 50 ms until stopped: (answered,
/// failed, longest time without an answer).
fn traffic(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u32, u32, Duration)> {
    std::thread::spawn(move || {
        let (mut answered, mut failed) = (0, 0);
        let mut last_answer = Instant::now();
        let mut longest_gap = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            if http_get(port, "/api/quote").is_some() {
                answered += 1;
                longest_gap = longest_gap.max(last_answer.elapsed());
                last_answer = Instant::now();
            } else {
                failed += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (answered, failed, longest_gap.max(last_answer.elapsed()))
    })
}

#[test]
fn a_rolling_upgrade_keeps_quorum_node_ids_and_the_service_answering() {
    let cluster = TestCluster::create(
        "upgrade",
        &[
            "--managers",
            "3",
            "--workers",
            "2",
            "--engine",
            "20.10",
            "--heartbeat",
            "1s",
        ],
    );
    let port = free_port();
    deploy(&cluster, "web", 4, &["-p", &format!("{port}:8080")]);
    assert!(crate::support::within(Duration::from_secs(20), || http_get(port, "/api/quote").is_some()).is_some());
    let ids = node_ids(&cluster);
    assert_eq!(ids.len(), 5);

    // One at a time: a manager going down when another is down already
    // would lose quorum, and is refused.
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(port, stop.clone());
    let started = Instant::now();
    let upgraded = json(
        &Test::new()
            .args([
                "node",
                "upgrade",
                "--all",
                "--engine",
                "28.5",
                "--json",
                "--name",
                &cluster.name,
            ])
            .run(),
    );
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (answered, failed, gap) = load.join().unwrap();
    eprintln!(
        "rolling upgrade of 3+2 from 20.10 to 28.5 in {:.1}s: {answered} requests answered, {failed} failed, longest gap {:.2}s",
        took.as_secs_f64(),
        gap.as_secs_f64()
    );
    let order: Vec<&str> = upgraded
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["node"].as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 5, "{upgraded}");
    assert_eq!(&order[3..], ["worker-1", "worker-2"], "managers first: {order:?}");
    for version in engines(&cluster) {
        assert!(version.1.starts_with("28.5."), "{version:?}");
    }
    assert_eq!(node_ids(&cluster), ids, "the same swarm nodes");
    assert!(
        answered > 0 && gap < Duration::from_secs(5),
        "it kept answering: {answered} answered, {failed} failed, gap {gap:?}"
    );

    // With a manager down, upgrading another would lose quorum: refused.
    Test::new()
        .args(["node", "crash", "manager-2", "--name", &cluster.name])
        .run();
    Test::new()
        .args([
            "node",
            "upgrade",
            "manager-3",
            "--image",
            "swarmlab/node:latest",
            "--name",
            &cluster.name,
        ])
        .fails_with(2, "would lose quorum: 2 of 3 managers are reachable")
        .run();
    cluster.delete();
}
