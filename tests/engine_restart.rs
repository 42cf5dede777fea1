//! The cluster comes back by itself after the host's Docker engine restarts.
//! It restarts the engine every other test uses, so scripts/test runs it
//! alone, after the rest (`cargo test -- --ignored`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Test, TestCluster, deploy, free_port, http_get, node_ids, swarmlab_command, within};

fn engine_answers() -> bool {
    Command::new("docker")
        .arg("version")
        .env_remove("DOCKER_HOST")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Restarts the host engine the way it was started: by systemd when it
/// manages it, else as scripts/setup starts it. `while_down` runs while no
/// engine answers.
fn restart_engine(while_down: impl FnOnce()) {
    if succeeds("systemctl", &["is-active", "--quiet", "docker"]) {
        assert!(succeeds("systemctl", &["stop", "docker.socket", "docker"]));
        while_down();
        assert!(succeeds("systemctl", &["start", "docker.socket", "docker"]));
    } else {
        let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd's pid file");
        assert!(succeeds("kill", &["-TERM", pid.trim()]));
        let pid_file = std::path::Path::new("/var/run/docker.pid");
        assert!(
            within(Duration::from_secs(60), || !pid_file.exists()).is_some(),
            "dockerd stopped"
        );
        while_down();
        assert!(succeeds(
            "sh",
            &["-c", "setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &"]
        ));
    }
    assert!(
        within(Duration::from_secs(60), engine_answers).is_some(),
        "dockerd answers again"
    );
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let running_tasks = || cluster.tasks("quotes", "{{.ID}} {{.CurrentState}}");
    let tasks_before = running_tasks();

    // The visualizer says so while the engine is away, and recovers after.
    let viz_port = free_port();
    let viz = swarmlab_command()
        .args([
            "viz",
            "--name",
            &cluster.name,
            "--addr",
            &format!("127.0.0.1:{viz_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _viz = KillOnDrop(viz);
    let viz_status = || -> (String, String) {
        http_get(viz_port, "/api/snapshot")
            .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
            .map(|s| {
                (
                    s["status"].as_str().unwrap_or_default().to_string(),
                    s["message"].to_string(),
                )
            })
            .unwrap_or_default()
    };
    assert!(
        within(Duration::from_secs(10), || viz_status().0 == "ok").is_some(),
        "viz sees the cluster"
    );

    let mut said_while_down = (String::new(), String::new());
    restart_engine(|| {
        within(Duration::from_secs(10), || {
            said_while_down = viz_status();
            said_while_down.0 == "unreachable"
        });
    });
    assert_eq!(said_while_down.0, "unreachable", "{said_while_down:?}");
    assert!(said_while_down.1.contains("does not answer"), "{said_while_down:?}");

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
    // The swarm lists the tasks that died with their nodes as running for a
    // moment after the nodes are back: `wait` is not fooled by them.
    let tasks_after = running_tasks();
    for line in tasks_before.lines() {
        let id = line.split_whitespace().next().unwrap_or_default();
        assert!(
            !tasks_after.contains(id),
            "{id} died with its node; wait counted it: {tasks_after}"
        );
    }
    assert!(
        within(Duration::from_secs(5), || http_get(port, "/api/quote").is_some()).is_some(),
        "its published port answers again"
    );
    assert!(
        within(Duration::from_secs(10), || viz_status().0 == "ok").is_some(),
        "viz recovers by itself"
    );
}
