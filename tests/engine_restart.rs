//! The cluster comes back by itself after the host's Docker engine restarts.
//! It restarts the engine every other test uses, so scripts/test runs it
//! alone, after the rest (`cargo test -- --ignored`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Test, TestCluster, deploy, free_port, http_get, node_ids, within};

fn engine_answers() -> bool {
    Command::new("docker")
        .arg("version")
        .env_remove("DOCKER_HOST")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Restarts the host engine the way it was started: by systemd when it
/// manages it, else as scripts/setup starts it.
fn restart_engine() {
    let systemd = Command::new("systemctl")
        .args(["is-active", "--quiet", "docker"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if systemd {
        assert!(
            Command::new("systemctl")
                .args(["restart", "docker"])
                .status()
                .unwrap()
                .success()
        );
    } else {
        let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd's pid file");
        assert!(
            Command::new("kill")
                .args(["-TERM", pid.trim()])
                .status()
                .unwrap()
                .success()
        );
        let gone = within(Duration::from_secs(60), || {
            !std::path::Path::new("/var/run/docker.pid").exists()
        });
        assert!(gone.is_some(), "dockerd stopped");
        let started = Command::new("sh")
            .args(["-c", "setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &"])
            .status()
            .unwrap();
        assert!(started.success());
    }
    assert!(
        within(Duration::from_secs(60), engine_answers).is_some(),
        "dockerd answers again"
    );
}

#[test]
#[ignore = "restarts the host's Docker engine: scripts/test runs it alone"]
fn the_cluster_comes_back_after_the_host_engine_restarts() {
    let cluster = TestCluster::create("reboot", &["--workers", "2", "--heartbeat", "1s"]);
    let port = free_port();
    let publish = format!("{port}:8080");
    deploy(&cluster, "quotes", 3, &["-p", &publish]);
    assert!(within(Duration::from_secs(5), || http_get(port, "/api/quote").is_some()).is_some());
    let swarm_id = cluster.docker(["info", "--format", "{{.Swarm.Cluster.ID}}"]);
    let nodes = node_ids(&cluster);

    restart_engine();
    let back = Instant::now();
    Test::new()
        .args(["wait", "--timeout", "30s", "--name", &cluster.name])
        .stdout_has("is whole after")
        .run();
    assert!(back.elapsed() < Duration::from_secs(30), "whole again within 30 s");
    assert_eq!(
        cluster.docker(["info", "--format", "{{.Swarm.Cluster.ID}}"]),
        swarm_id,
        "the same swarm"
    );
    assert_eq!(node_ids(&cluster), nodes, "the same nodes");
    assert!(
        within(Duration::from_secs(5), || http_get(port, "/api/quote").is_some()).is_some(),
        "its published port answers again"
    );
}
