//! Creating, listing, inspecting, using and deleting clusters.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{
    Test, TestCluster, cert_dir, host_docker, image_exists, leftovers, stdout, swarmlab_command, unique,
};

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn default_cluster_is_a_normal_swarm_until_deleted() {
    let cluster = TestCluster::create("default", &[]);
    let name = cluster.name.clone();

    let nodes = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"]);
    assert_eq!(
        sorted_lines(&nodes),
        [
            "manager-1 Ready Leader",
            "worker-1 Ready",
            "worker-2 Ready",
            "worker-3 Ready"
        ]
    );

    let env = cluster.env();
    assert!(env["DOCKER_HOST"].starts_with("tcp://127.0.0.1:"), "{env:?}");
    assert_eq!(env["DOCKER_TLS_VERIFY"], "1");
    assert!(std::path::Path::new(&env["DOCKER_CERT_PATH"]).join("key.pem").is_file());

    for node in ["manager-1", "worker-1", "worker-2", "worker-3"] {
        let container = format!("{name}-{node}");
        let role = node.split('-').next().unwrap();
        let facts = host_docker([
            "inspect",
            "-f",
            "{{.Config.Hostname}}|{{index .Config.Labels \"io.swarmlab.cluster\"}}|{{index .Config.Labels \"io.swarmlab.role\"}}|{{index .Config.Labels \"io.swarmlab.node\"}}|{{json .HostConfig.PortBindings}}",
            &container,
        ]);
        let facts: Vec<&str> = facts.trim().split('|').collect();
        assert_eq!(facts[..4], [node, name.as_str(), role, node], "{container}");
        if role == "manager" {
            assert!(
                facts[4].contains("\"HostIp\":\"127.0.0.1\""),
                "manager API published on 127.0.0.1 only: {}",
                facts[4]
            );
        } else {
            // This host routes to the cluster network: workers need no
            // published port (nor the proxy process and rules it costs).
            assert!(!facts[4].contains("HostPort"), "worker API not published: {}", facts[4]);
        }
        let static_ip = host_docker([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAMConfig.IPv4Address}}{{end}}",
            &container,
        ]);
        assert!(!static_ip.trim().is_empty(), "{container} has a static address");
        let volume_labels = host_docker(["volume", "inspect", "-f", "{{json .Labels}}", &container]);
        assert!(
            volume_labels.contains(&format!("\"io.swarmlab.node\":\"{node}\"")),
            "{volume_labels}"
        );
    }
    // The docker CLI reaches a worker at its own address, TLS verified.
    let worker_address = host_docker([
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("{name}-worker-1"),
    ]);
    let worker_name = Command::new("docker")
        .args(["info", "--format", "{{.Name}}"])
        .env("DOCKER_HOST", format!("tcp://{}:2376", worker_address.trim()))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &env["DOCKER_CERT_PATH"])
        .output()
        .expect("docker runs");
    assert_eq!(
        String::from_utf8_lossy(&worker_name.stdout).trim(),
        "worker-1",
        "{}",
        String::from_utf8_lossy(&worker_name.stderr)
    );
    let network = host_docker([
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        &format!("{name}-net"),
    ]);
    assert!(
        !network.trim().starts_with("10."),
        "cluster subnet avoids Swarm's pool: {network}"
    );

    let listed: serde_json::Value = serde_json::from_slice(&Test::new().args(["ls", "--json"]).run().stdout).unwrap();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .expect("listed");
    assert_eq!(entry["status"], "running");
    assert_eq!(
        (entry["managers_ready"].as_u64(), entry["workers_ready"].as_u64()),
        (Some(1), Some(3))
    );

    let inspected = cluster.inspect();
    let nodes = inspected["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[0]["hostname"], "manager-1");
    assert_eq!(nodes[0]["manager_status"], "leader");
    assert!(
        nodes
            .iter()
            .all(|n| n["swarm_state"] == "ready" && n["container_state"] == "running")
    );
    assert!(nodes.iter().all(|n| !n["engine_version"].as_str().unwrap().is_empty()));

    Test::new()
        .args(["create", "--name", &name, "--workers", "1"])
        .fails_with(4, "already exists")
        .run();

    let cert_dir = cert_dir(&name);
    assert!(cert_dir.is_dir());
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
    assert!(!cert_dir.exists(), "TLS material deleted with the cluster");
    Test::new()
        .args(["delete", "--name", &name])
        .fails_with(3, "no cluster named")
        .run();
}

#[test]
fn three_managers_are_leader_and_reachable() {
    let cluster = TestCluster::create("ha", &["--managers", "3", "--workers", "2"]);
    let nodes = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"]);
    let lines = sorted_lines(&nodes);
    assert_eq!(lines.len(), 5, "{nodes}");
    let managers: Vec<&String> = lines.iter().filter(|l| l.starts_with("manager-")).collect();
    assert_eq!(managers.len(), 3);
    assert_eq!(
        managers.iter().filter(|l| l.ends_with("Ready Leader")).count(),
        1,
        "{nodes}"
    );
    assert_eq!(
        managers.iter().filter(|l| l.ends_with("Ready Reachable")).count(),
        2,
        "{nodes}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("worker-"))
            .cloned()
            .collect::<Vec<_>>(),
        ["worker-1 Ready", "worker-2 Ready"]
    );
}

#[test]
fn two_clusters_live_side_by_side() {
    let first = TestCluster::create("left", &["--workers", "1"]);
    let second = TestCluster::create("right", &["--workers", "1", "--heartbeat", "1s"]);
    assert_ne!(first.env()["DOCKER_HOST"], second.env()["DOCKER_HOST"]);
    let subnet = |c: &TestCluster| {
        host_docker([
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            &format!("{}-net", c.name),
        ])
    };
    assert_ne!(subnet(&first), subnet(&second));
    for cluster in [&first, &second] {
        let ids = cluster.docker(["node", "ls", "-q"]);
        assert_eq!(ids.lines().count(), 2, "{}: {ids}", cluster.name);
    }
    let heartbeat = second.docker(["info", "--format", "{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}"]);
    assert_eq!(heartbeat.trim(), "1s", "--heartbeat reaches the swarm");

    let first_name = first.name.clone();
    first.delete();
    assert_eq!(leftovers(&first_name), Vec::<String>::new());
    assert_eq!(
        second.docker(["node", "ls", "-q"]).lines().count(),
        2,
        "the other cluster is untouched"
    );
}

/// An image that has a shell but no dockerd: nodes start, then die.
fn image_without_dockerd() -> &'static str {
    static IMAGE: OnceLock<&str> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let image = "swarmlab-test/no-dockerd:latest";
        if !image_exists(image) {
            let builder = format!("swarmlab-test-builder-{}", std::process::id());
            host_docker([
                "run",
                "--name",
                &builder,
                "--entrypoint",
                "rm",
                "swarmlab/node:latest",
                "-f",
                "/usr/sbin/dockerd",
            ]);
            host_docker(["commit", &builder, image]);
            host_docker(["rm", "-v", &builder]);
        }
        image
    })
}

#[test]
fn a_failed_create_leaves_nothing_behind() {
    let name = unique("broken");
    Test::new()
        .args([
            "create",
            "--name",
            &name,
            "--workers",
            "2",
            "--image",
            image_without_dockerd(),
        ])
        .fails_with(1, "before its engine answered")
        .stderr_has("rolling back")
        .run();
    assert_eq!(leftovers(&name), Vec::<String>::new());
    assert!(!cert_dir(&name).exists());
}

/// A create given less time than its engines take says so as a timeout,
/// with the option that gives it more, and rolls back.
#[test]
fn a_create_out_of_time_says_to_give_it_longer_and_leaves_nothing() {
    let name = unique("hasty");
    Test::new()
        .args(["create", "--name", &name, "--workers", "1", "--wait", "0s"])
        .fails_with(8, "to listen; on a busy host, give it longer with --wait")
        .stderr_has("rolling back")
        .run();
    assert_eq!(leftovers(&name), Vec::<String>::new());
    assert!(!cert_dir(&name).exists());
}

#[test]
fn retain_keeps_a_failed_create_for_inspection() {
    let name = unique("kept");
    let _cleanup = TestCluster::adopt(&name);
    Test::new()
        .args([
            "create",
            "--name",
            &name,
            "--workers",
            "1",
            "--retain",
            "--image",
            image_without_dockerd(),
        ])
        .fails_with(1, "before its engine answered")
        .stderr_has("--retain")
        .run();
    assert!(!leftovers(&name).is_empty(), "--retain keeps what was made");
    Test::new()
        .args(["delete", "--name", &name])
        .stdout_has("Deleted cluster")
        .run();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

#[test]
fn an_interrupted_create_rolls_back() {
    interrupt_a_create("INT");
}

/// The terminal going away (an ssh session dropped) is an interruption too.
#[test]
fn a_create_whose_terminal_hangs_up_rolls_back() {
    interrupt_a_create("HUP");
}

/// `swarmlab create 2>&1 | head -1`: the reader of the progress goes away.
/// Was: SIGPIPE killed swarmlab mid-create and left its containers behind.
#[test]
fn a_create_whose_output_reader_goes_away_rolls_back() {
    let name = unique("pipe");
    let mut child = swarmlab_command()
        .args(["create", "--name", &name, "--workers", "3"])
        .env("SWARMLAB_PLAIN", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    assert!(first.contains("Creating cluster"), "{first}");
    // Gone once there is something to roll back.
    let started = Instant::now();
    while leftovers(&name).iter().all(|l| !l.starts_with("container")) {
        assert!(started.elapsed() < Duration::from_secs(30), "no container appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stderr);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

#[track_caller]
fn interrupt_a_create(signal: &str) {
    let name = unique(&format!("sig{}", signal.to_lowercase()));
    let child = swarmlab_command()
        .args(["create", "--name", &name, "--workers", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while leftovers(&name).iter().all(|l| !l.starts_with("container")) {
        assert!(started.elapsed() < Duration::from_secs(30), "no container appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "SIG{signal}: {stderr}");
    assert!(stderr.contains("rolling back"), "{stderr}");
    assert_eq!(leftovers(&name), Vec::<String>::new(), "{stderr}");
}

/// From 31 nodes on, the nodes join the swarm together once every node's
/// engine answers, which makes large clusters much sooner (README, "At
/// larger sizes"); the cluster is whole all the same.
#[test]
fn a_cluster_of_31_nodes_joins_together_and_is_whole() {
    let name = unique("thirtyone");
    let cluster = TestCluster::adopt(&name);
    Test::new()
        .args(["create", "--name", &name, "--workers", "30"])
        .stderr_has("worker-30: waiting for every node's engine")
        .stdout_has("is ready in")
        .run();
    let listed = crate::support::json(&Test::new().args(["ls", "--json"]).run());
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .unwrap_or_else(|| panic!("ls lists {name}: {listed}"))
        .clone();
    assert_eq!(
        (entry["managers_ready"].as_u64(), entry["workers_ready"].as_u64()),
        (Some(1), Some(30)),
        "{entry}"
    );
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

#[test]
fn ls_and_inspect_explain_themselves() {
    let output = Test::new().args(["create", "--help"]).stdout_has("Examples:").run();
    assert!(stdout(&output).contains("--managers"));
    Test::new()
        .args(["--help"])
        .stdout_has("eval \"$(swarmlab env)\"")
        .run();
}
