//! Network faults: a node cut off from the others while its container runs
//! on, healed; slowed down where the kernel has netem.

use crate::support::{Test, TestCluster, deploy, host_docker, json, node_ids};

#[test]
fn a_partitioned_worker_is_marked_down_its_tasks_move_and_heal_brings_it_back() {
    let cluster = TestCluster::create("partition", &["--workers", "2", "--heartbeat", "1s"]);
    deploy(&cluster, "web", 3, &[]);
    let stages = |output: &std::process::Output| -> Vec<String> {
        json(output)
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| pair[0].as_str().unwrap().to_string())
            .collect()
    };
    let cut = Test::new()
        .args(["node", "partition", "worker-1", "--json", "--name", &cluster.name])
        .run();
    assert_eq!(stages(&cut), ["cut off", "marked down", "everything running again"]);
    assert_eq!(
        host_docker([
            "inspect",
            "-f",
            "{{.State.Running}}",
            &format!("{}-worker-1", cluster.name)
        ])
        .trim(),
        "true",
        "a partition leaves the container running"
    );
    let placed = cluster.tasks("web", "{{.Node}}");
    assert_eq!(placed.lines().count(), 3, "{placed}");
    assert!(!placed.contains("worker-1"), "the tasks run elsewhere: {placed}");

    let healed = Test::new()
        .args(["node", "heal", "worker-1", "--json", "--name", &cluster.name])
        .run();
    assert_eq!(stages(&healed), ["reconnected", "Ready", "cluster whole"]);
    assert!(node_ids(&cluster).contains_key("worker-1"), "Ready again");
    // Healing a node that is not cut off changes nothing and succeeds.
    Test::new()
        .args(["node", "heal", "worker-1", "--name", &cluster.name])
        .stdout_has("worker-1 healed")
        .run();

    // Cut off from one node only: nothing to wait for.
    let one = Test::new()
        .args([
            "node",
            "partition",
            "worker-2",
            "--from",
            "worker-1",
            "--json",
            "--name",
            &cluster.name,
        ])
        .run();
    assert_eq!(stages(&one), ["cut off"]);
    let rules = host_docker([
        "exec",
        &format!("{}-worker-2", cluster.name),
        "iptables",
        "-S",
        "SWARMLAB-PARTITION",
    ]);
    assert_eq!(
        rules.matches("-j DROP").count(),
        2,
        "to and from worker-1 only: {rules}"
    );
    Test::new()
        .args(["node", "heal", "worker-2", "--name", &cluster.name])
        .run();

    Test::new()
        .args([
            "node",
            "partition",
            "worker-2",
            "--from",
            "worker-2",
            "--name",
            &cluster.name,
        ])
        .fails_with(2, "cannot be cut off from itself")
        .run();
    // Where the kernel has netem the node is slowed down; where it has not
    // (this machine's), one line says so at once.
    let slow = crate::support::swarmlab_command()
        .args(["node", "slow", "worker-2", "--delay", "100ms", "--name", &cluster.name])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&slow.stderr);
    if slow.status.success() {
        assert!(String::from_utf8_lossy(&slow.stdout).contains("100ms more delay"));
        Test::new()
            .args(["node", "heal", "worker-2", "--name", &cluster.name])
            .run();
    } else {
        assert_eq!(slow.status.code(), Some(9), "{said}");
        assert!(
            said.contains("this kernel has no netem") && said.lines().count() == 1,
            "{said}"
        );
    }
    Test::new()
        .args([
            "node",
            "slow",
            "worker-2",
            "--delay",
            "100ms",
            "--loss",
            "150%",
            "--name",
            &cluster.name,
        ])
        .fails_with(2, "is not a share from 0% to 100%")
        .run();
}

/// Swarm's admin guide exercise: 3 managers keep quorum with one cut off
/// and lose it with two down; recover brings it back, services kept.
#[test]
fn quorum_kept_with_one_manager_cut_off_lost_with_two_down_and_recovered() {
    let cluster = TestCluster::create("quorum", &["--managers", "3", "--workers", "1", "--heartbeat", "1s"]);
    let port = crate::support::free_port();
    deploy(&cluster, "web", 2, &["-p", &format!("{port}:8080")]);

    Test::new()
        .args(["node", "partition", "manager-3", "--name", &cluster.name])
        .run();
    // The other two still make a quorum: the services can change.
    cluster.docker(["service", "scale", "--detach=false", "web=3"]);
    Test::new()
        .args(["node", "heal", "manager-3", "--name", &cluster.name])
        .run();

    Test::new()
        .args(["node", "crash", "manager-2", "--name", &cluster.name])
        .run();
    let lost = Test::new()
        .args(["node", "crash", "manager-3", "--json", "--name", &cluster.name])
        .run();
    assert!(json(&lost).to_string().contains("quorum lost"), "{}", json(&lost));
    Test::new()
        .args(["inspect", "--name", &cluster.name])
        .stderr_has("quorum lost in cluster")
        .stderr_has("1 of 3 managers up")
        .stderr_has("swarmlab recover")
        .run();
    Test::new()
        .args(["wait", "--timeout", "3s", "--name", &cluster.name])
        .fails_with(8, "quorum lost")
        .run();

    let recovered = json(&Test::new().args(["recover", "--json", "--name", &cluster.name]).run());
    assert_eq!(recovered["survivor"], "manager-1", "{recovered}");
    assert_eq!(recovered["rejoined"], serde_json::json!(["manager-2", "manager-3"]));
    eprintln!(
        "recovered a 3-manager swarm from quorum loss in {}s",
        recovered["seconds"]
    );
    let managers = cluster.docker([
        "node",
        "ls",
        "--filter",
        "role=manager",
        "--format",
        "{{.Hostname}} {{.Status}}",
    ]);
    assert_eq!(
        managers.lines().filter(|l| l.ends_with("Ready")).count(),
        3,
        "{managers}"
    );
    let spec = cluster.docker([
        "service",
        "inspect",
        "web",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ]);
    assert!(
        spec.starts_with("3 swarmlab/quotes:latest"),
        "the service keeps its spec: {spec}"
    );
    assert!(
        crate::support::within(std::time::Duration::from_secs(30), || crate::support::http_get(
            port,
            "/api/quote"
        )
        .is_some())
        .is_some(),
        "the service answers again"
    );
    Test::new()
        .args(["recover", "--name", &cluster.name])
        .fails_with(2, "has a leader: nothing to recover")
        .run();
}
