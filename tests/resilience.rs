//! Breaking clusters and watching them heal: node operations, crashes,
//! removed containers, killed tasks, rebalancing, stop and start, a stalled
//! manager, the demo.

use crate::support::{Test, TestCluster, deploy, free_port, host_docker, json, leftovers, node_ids, stdout, unique};

const DEMO: &str = "swarmlab/quotes:latest";

#[test]
fn nodes_are_added_drained_promoted_and_removed() {
    let cluster = TestCluster::create("nodes", &["--workers", "1"]);
    Test::new().args(["image", "load", DEMO, "--name", &cluster.name]).run();

    Test::new()
        .args(["node", "add", "--name", &cluster.name])
        .stdout_has("Added 1 worker")
        .stdout_has("worker-2")
        .run();
    assert_eq!(
        cluster.node_image_id("worker-2", DEMO),
        host_docker(["image", "inspect", "-f", "{{.Id}}", DEMO]),
        "a new node gets the images"
    );

    let row = |host: &str| -> serde_json::Value {
        let listed = json(
            &Test::new()
                .args(["node", "ls", "--json", "--name", &cluster.name])
                .run(),
        );
        listed["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["hostname"] == host)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    Test::new()
        .args(["node", "drain", "worker-1", "--name", &cluster.name])
        .run();
    assert_eq!(row("worker-1")["availability"], "drain");
    Test::new()
        .args(["node", "activate", "worker-1", "--name", &cluster.name])
        .run();
    assert_eq!(row("worker-1")["availability"], "active");
    Test::new()
        .args(["node", "promote", "worker-2", "--name", &cluster.name])
        .run();
    assert_eq!(row("worker-2")["role"], "manager");
    Test::new()
        .args(["node", "demote", "worker-2", "--name", &cluster.name])
        .run();
    assert_eq!(row("worker-2")["role"], "worker");
    Test::new()
        .args(["node", "demote", "manager-1", "--name", &cluster.name])
        .fails_with(2, "only manager")
        .run();

    Test::new()
        .args(["node", "rm", "worker-2", "--name", &cluster.name])
        .stdout_has("Removed worker-2")
        .run();
    Test::new()
        .args(["node", "rm", "worker-1", "--force", "--name", &cluster.name])
        .stdout_has("Removed worker-1")
        .run();
    let hosts = cluster.docker(["node", "ls", "--format", "{{.Hostname}}"]);
    assert_eq!(hosts.trim(), "manager-1", "the swarm lists neither removed node");
    let left = leftovers(&cluster.name);
    assert!(
        left.iter().all(|l| !l.contains("worker")),
        "containers and volumes go: {left:?}"
    );
    Test::new()
        .args(["node", "rm", "worker-7", "--name", &cluster.name])
        .fails_with(2, "has no node \"worker-7\"")
        .run();
}

#[test]
fn a_crash_is_noticed_and_start_brings_back_the_same_node() {
    let cluster = TestCluster::create("crash", &["--workers", "2", "--heartbeat", "1s"]);
    deploy(&cluster, "quotes", 4, &[]);
    let before = node_ids(&cluster);

    let crash = json(
        &Test::new()
            .args(["node", "crash", "worker-2", "--json", "--name", &cluster.name])
            .run(),
    );
    let stages: Vec<&str> = crash
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["killed", "marked down", "everything running again"]);
    let state = host_docker([
        "inspect",
        "-f",
        "{{.State.Status}}",
        &format!("{}-worker-2", cluster.name),
    ]);
    assert_eq!(state.trim(), "exited", "a crashed node's container is kept");
    let down = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    assert!(down.contains("worker-2 Down"), "{down}");
    let running = cluster.tasks("quotes", "{{.Node}} {{.CurrentState}}");
    assert_eq!(
        running.lines().filter(|l| l.contains("Running")).count(),
        4,
        "{running}"
    );
    assert!(!running.contains("worker-2 Running"), "{running}");

    Test::new()
        .args(["node", "start", "worker-2", "--name", &cluster.name])
        .stdout_has("worker-2 started")
        .run();
    assert_eq!(node_ids(&cluster), before, "the same swarm nodes, with the same IDs");
}

#[test]
fn a_worker_removed_behind_our_back_is_waited_for_recreated_and_rebalanced() {
    let cluster = TestCluster::create("heal", &["--heartbeat", "1s"]);
    deploy(&cluster, "quotes", 11, &[]);
    host_docker(["rm", "-f", &format!("{}-worker-2", cluster.name)]);

    Test::new()
        .args(["wait", "--timeout", "60s", "--name", &cluster.name])
        .stdout_has("is whole after")
        .run();
    let spread = cluster.tasks("quotes", "{{.Node}}");
    assert!(!spread.contains("worker-2"), "tasks left worker-2: {spread}");

    let restarted = json(
        &Test::new()
            .args(["node", "restart", "worker-2", "--json", "--name", &cluster.name])
            .run(),
    );
    assert!(restarted.to_string().contains("rejoined, Ready"), "{restarted}");
    let hosts = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    assert_eq!(
        hosts.lines().filter(|l| l.starts_with("worker-2")).collect::<Vec<_>>(),
        ["worker-2 Ready"],
        "the stale entry is gone: {hosts}"
    );

    let report = json(&Test::new().args(["rebalance", "--json", "--name", &cluster.name]).run());
    let service = &report["services"][0];
    assert_eq!(service["before"]["worker-2"], 0, "{report}");
    let after: Vec<u64> = service["after"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(after.iter().sum::<u64>(), 11);
    assert!(after.iter().all(|c| *c == 2 || *c == 3), "{report}");
    assert!(
        report["elapsed"]["secs"].as_u64().unwrap() < 15,
        "rebalanced within 15 s: {report}"
    );
}

#[test]
fn killed_tasks_are_replaced_and_wait_reports_what_is_missing() {
    let cluster = TestCluster::create("tasks", &["--workers", "1"]);
    deploy(&cluster, "quotes", 3, &[]);
    let report = json(
        &Test::new()
            .args([
                "task",
                "kill",
                "--service",
                "quotes",
                "--count",
                "2",
                "--json",
                "--name",
                &cluster.name,
            ])
            .run(),
    );
    assert_eq!(report["killed"].as_array().unwrap().len(), 2, "{report}");
    let running = cluster.docker(["service", "ls", "--filter", "name=quotes", "--format", "{{.Replicas}}"]);
    assert_eq!(running.trim(), "3/3");

    cluster.docker([
        "service",
        "create",
        "--name",
        "never",
        "--detach",
        "swarmlab-test/absent:1",
    ]);
    Test::new()
        .args(["wait", "--timeout", "3s", "--name", &cluster.name])
        .fails_with(8, "never 0/1 running")
        .run();
    Test::new()
        .args(["task", "kill", "--service", "nosuch", "--name", &cluster.name])
        .fails_with(2, "no service named")
        .run();
}

#[test]
fn stop_and_start_bring_back_the_same_swarm() {
    let cluster = TestCluster::create("power", &["--workers", "1"]);
    deploy(&cluster, "quotes", 2, &[]);
    let swarm_id = cluster.docker(["info", "--format", "{{.Swarm.Cluster.ID}}"]);
    let before = node_ids(&cluster);

    Test::new()
        .args(["stop", "--name", &cluster.name])
        .stdout_has("Stopped")
        .run();
    let listed = json(&Test::new().args(["ls", "--json"]).run());
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster.name.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "stopped");

    Test::new()
        .args(["start", "--name", &cluster.name])
        .stdout_has("is back in")
        .run();
    assert_eq!(cluster.docker(["info", "--format", "{{.Swarm.Cluster.ID}}"]), swarm_id);
    assert_eq!(node_ids(&cluster), before);

    // A manager whose engine stalls for longer than a first look gives it
    // (as on a host loaded to the brim) is waited for, not reported gone.
    // Stopped from this side: dockerd is its container's first process,
    // which ignores a SIGSTOP sent from inside.
    let manager = format!("{}-manager-1", cluster.name);
    let dockerd = host_docker(["inspect", "-f", "{{.State.Pid}}", &manager])
        .trim()
        .to_string();
    let command = std::fs::read_to_string(format!("/proc/{dockerd}/comm")).unwrap_or_default();
    assert_eq!(command.trim(), "dockerd", "the tests run beside their engine, as root");
    let signal = move |which: &str| {
        let sent = std::process::Command::new("kill").args([which, &dockerd]).status();
        assert!(sent.unwrap().success(), "kill {which} the manager's dockerd");
    };
    signal("-STOP");
    let started = std::time::Instant::now();
    let resume = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(10));
        signal("-CONT");
    });
    // What looks at the cluster (inspect, ls, viz, top) says so at once...
    Test::new()
        .args(["inspect", "--name", &cluster.name])
        .stderr_has("manager-1: no answer within 3s")
        .run();
    assert!(started.elapsed().as_secs() < 8, "inspect waited for the manager");
    // ...what needs a manager to act waits for it, past a first look.
    Test::new()
        .args(["env", "--name", &cluster.name])
        .stdout_has("DOCKER_HOST")
        .run();
    let answered = started.elapsed();
    resume.join().unwrap();
    assert!(
        answered.as_secs() >= 9,
        "env answered in {answered:?}, while its manager's engine was stopped"
    );
}

/// Ctrl-C once the cluster is made: the demo stops and removes it.
#[test]
fn an_interrupted_demo_removes_its_cluster() {
    use crate::support::{exit_within, interrupt, stderr_lines};
    let name = unique("demoint");
    let port = free_port().to_string();
    let mut child = crate::support::swarmlab_command()
        .args(["demo", "--name", &name, "--workers", "2", "--port", &port])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let mut said = Vec::new();
    while !said.iter().any(|l: &String| l.contains("2. Put the quotes")) {
        match lines.recv_timeout(std::time::Duration::from_secs(180)) {
            Ok(line) => said.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("the demo did not reach its second step: {said:?}");
            }
        }
    }
    interrupt(&child);
    let status = exit_within(&mut child, std::time::Duration::from_secs(120));
    said.extend(lines.iter());
    let said = said.join("\n");
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("Interrupted: stopping the demo"), "{said}");
    assert_eq!(leftovers(&name), Vec::<String>::new(), "{said}");
    let sources = host_docker(["ps", "-aq", "--filter", "label=io.swarmlab.role=demo-source"]);
    assert_eq!(sources, "", "no container handing out the demo is left");
}

#[test]
fn the_demo_runs_the_whole_scenario_and_leaves_nothing() {
    let name = unique("demo");
    let port = free_port();
    let output = Test::new()
        .args([
            "demo",
            "--json",
            "--name",
            &name,
            "--port",
            &port.to_string(),
            "--timeout",
            "3m",
        ])
        .stderr_has("1. Create a cluster")
        .stderr_has("8. Swarm does not move tasks back")
        .stderr_has("requests failed, longest gap without an answer")
        .run();
    let report = json(&output);
    let stages = crate::support::demo_stages(&report);
    assert_eq!(
        stages,
        [
            "create",
            "first answer",
            "scale to 11",
            "task replacement",
            "crash detection",
            "full recovery",
            "node restart",
            "rebalance",
            "delete"
        ],
        "{}",
        stdout(&output)
    );
    assert!(report["spread"].as_object().unwrap().len() >= 8, "{report}");
    // The task kill and the crash run under traffic, and say what they cost.
    for timing in report["timings"].as_array().unwrap() {
        let stage = timing["stage"].as_str().unwrap();
        let under_traffic = ["task replacement", "full recovery"].contains(&stage);
        assert_eq!(timing.get("traffic").is_some(), under_traffic, "{timing}");
        if under_traffic {
            let cost = &timing["traffic"];
            eprintln!("demo {stage}: {cost}");
            let requests = cost["requests"].as_u64().unwrap();
            assert!(requests >= 20, "20 a second for a few seconds: {cost}");
            assert!(cost["failed"].as_u64().unwrap() < requests, "{cost}");
            assert!(cost["longest_gap"].as_f64().unwrap() >= 0.0, "{cost}");
        }
    }
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// `--api-port` holds for the first manager made anew, here after its
/// container was removed (`node restart` needs another manager to rejoin
/// through; upgrade and certificate renewal make containers anew too):
/// what `swarmlab env` printed before still reaches the cluster.
#[test]
fn a_fixed_api_port_stays_when_the_node_is_made_anew() {
    let port = free_port().to_string();
    let cluster = TestCluster::create("apiport", &["--managers", "3", "--workers", "0", "--api-port", &port]);
    let before = cluster.env();
    assert!(before["DOCKER_HOST"].ends_with(&format!(":{port}")), "{before:?}");
    let manager = format!("{}-manager-1", cluster.name);
    host_docker(["rm", "-f", &manager]);
    Test::new()
        .args(["node", "restart", "manager-1", "--name", &cluster.name])
        .stdout_has("manager-1")
        .run();
    assert_eq!(
        host_docker(["port", &manager, "2376/tcp"]).trim(),
        format!("127.0.0.1:{port}")
    );
    let listed = std::process::Command::new("docker")
        .args(["node", "ls", "-q"])
        .envs(&before)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    cluster.delete();
}
