//! Images into nodes, the quotes demo service, and published ports that
//! answer on the host's 127.0.0.1.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Test, TestCluster, free_port, host_docker, http_get, image_exists, within};

const DEMO: &str = "swarmlab/quotes:latest";

fn load_demo(cluster: &TestCluster) -> serde_json::Value {
    let output = Test::new()
        .args(["image", "load", DEMO, "--json", "--name", &cluster.name])
        .run();
    serde_json::from_slice(&output.stdout).expect("image load prints JSON")
}

fn outcomes(report: &serde_json::Value) -> Vec<(String, String)> {
    report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["node"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn image_load_copies_an_image_into_nodes_that_lack_it() {
    let cluster = TestCluster::create("load", &["--workers", "2"]);
    let host_id = host_docker(["image", "inspect", "-f", "{{.Id}}", DEMO]);

    Test::new()
        .args(["image", "load", DEMO, "--name", &cluster.name, "--nodes", "worker-1"])
        .stdout_has("loaded")
        .run();
    let report = load_demo(&cluster);
    assert_eq!(
        outcomes(&report),
        [
            ("manager-1".to_string(), "loaded".to_string()),
            ("worker-1".to_string(), "present".to_string()),
            ("worker-2".to_string(), "loaded".to_string()),
        ]
    );
    for node in ["manager-1", "worker-1", "worker-2"] {
        assert_eq!(
            cluster.node_image_id(node, DEMO),
            host_id,
            "{node} holds the host's image"
        );
    }
    let again = load_demo(&cluster);
    assert!(
        outcomes(&again).iter().all(|(_, outcome)| outcome == "present"),
        "{again}"
    );

    Test::new()
        .args(["image", "load", "swarmlab-test/absent:1", "--name", &cluster.name])
        .fails_with(2, "is not on the host engine")
        .run();
    Test::new()
        .args(["image", "load", DEMO, "--name", &cluster.name, "--nodes", "worker-9"])
        .fails_with(2, "has no node \"worker-9\"")
        .run();
}

/// The demo image built by this swarmlab with no compiler to be found:
/// no rustc on PATH, none named by RUSTC.
#[test]
fn the_demo_image_needs_no_compiler_is_small_and_answers_quotes() {
    const DEMO: &str = "swarmlab-test/quotes-no-compiler:latest";
    let build = || {
        Test::new()
            .args(["image", "build-demo", "--tag", DEMO])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("RUSTC", "/nonexistent/rustc")
            .stdout_has("Built demo image")
            .run();
        host_docker(["image", "inspect", "-f", "{{.Id}}", DEMO])
            .trim()
            .to_string()
    };
    let first = build();
    let second = build();
    assert_ne!(first, second);
    assert!(
        !image_exists(&first),
        "a rebuild leaves no nameless copy of the image it replaced"
    );
    // An image of someone else's under that name is left alone, nameless
    // (as is the build it took the name from, then no longer swarmlab's to
    // replace).
    let mut import = Command::new("docker")
        .args(["import", "-", DEMO])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = import.stdin.take().unwrap();
    stdin.write_all(&[0u8; 1024]).unwrap(); // an empty tar archive
    drop(stdin);
    assert!(import.wait().unwrap().success());
    let theirs = host_docker(["image", "inspect", "-f", "{{.Id}}", DEMO])
        .trim()
        .to_string();
    build();
    assert!(image_exists(&theirs), "not swarmlab's: kept");
    host_docker(["rmi", &theirs, &second]);
    let size: u64 = host_docker(["image", "inspect", "-f", "{{.Size}}", DEMO])
        .trim()
        .parse()
        .unwrap();
    assert!(size <= 15 * 1024 * 1024, "demo image is {size} bytes");
    let port = free_port();
    let container = format!("swarmlab-test-quotes-{port}");
    host_docker([
        "run",
        "-d",
        "--name",
        &container,
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        DEMO,
    ]);
    let answered = within(Duration::from_secs(5), || http_get(port, "/health").is_some());
    let quote = http_get(port, "/api/quote");
    let stats = host_docker(["stats", "--no-stream", "--format", "{{.MemUsage}}", &container]);
    host_docker(["stop", "-t", "5", &container]);
    let exit_code = host_docker(["inspect", "-f", "{{.State.ExitCode}}", &container]);
    let logs = host_docker(["logs", &container]);
    host_docker(["rm", &container]);

    assert!(answered.is_some(), "quotes answers /health");
    let quote: serde_json::Value = serde_json::from_str(&quote.expect("a quote")).unwrap();
    let address = quote["ipAddress"].as_str().unwrap();
    let (hostname, ip) = address.split_once('/').unwrap();
    assert_eq!(hostname.len(), 12, "{address}");
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{address}");
    assert_eq!(quote["language"], "EN");
    assert!(!quote["quote"].as_str().unwrap().is_empty());
    let used = stats.split('/').next().unwrap().trim();
    let mib: f64 = if let Some(kib) = used.strip_suffix("KiB") {
        kib.parse::<f64>().unwrap() / 1024.0
    } else {
        used.trim_end_matches("MiB").parse().unwrap()
    };
    assert!(mib <= 5.0, "a replica idles at {used}");
    assert_eq!(exit_code.trim(), "0", "stops gracefully on SIGTERM");
    assert!(logs.contains("GET /api/quote 200"), "a log line per request: {logs}");
    assert!(logs.contains("stopped"), "{logs}");
}

/// The blog's commands, literally, through the docker CLI.
#[test]
fn the_blog_flow_reaches_replicas_on_localhost() {
    let cluster = TestCluster::create("blog", &[]);
    load_demo(&cluster);
    cluster.docker([
        "service",
        "create",
        "--name",
        "quotes-service",
        "--detach=false",
        "-p",
        "8080:8080",
        DEMO,
    ]);
    let first = within(Duration::from_secs(3), || http_get(8080, "/api/quote").is_some());
    assert!(
        first.is_some(),
        "localhost:8080 answers within 3 s of the service converging"
    );

    cluster.docker(["service", "scale", "quotes-service=11"]);
    let replicas: BTreeSet<String> = (0..50)
        .filter_map(|_| http_get(8080, "/api/quote"))
        .map(|body| {
            let quote: serde_json::Value = serde_json::from_str(&body).unwrap();
            quote["ipAddress"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        replicas.len() >= 8,
        "50 requests reached {} replicas: {replicas:?}",
        replicas.len()
    );

    cluster.docker(["service", "rm", "quotes-service"]);
    let stopped = within(Duration::from_secs(3), || http_get(8080, "/api/quote").is_none());
    assert!(
        stopped.is_some(),
        "localhost:8080 stops answering within 3 s of the service's removal"
    );
}

#[test]
fn ports_published_after_creation_come_and_go() {
    let cluster = TestCluster::create("publish", &["--workers", "1"]);
    load_demo(&cluster);
    cluster.docker(["service", "create", "--name", "late", "--detach=false", DEMO]);
    let port = free_port();
    cluster.docker([
        "service",
        "update",
        "--detach=false",
        "--publish-add",
        &format!("{port}:8080"),
        "late",
    ]);
    assert!(
        within(Duration::from_secs(3), || http_get(port, "/api/quote").is_some()).is_some(),
        "a port published after creation answers"
    );
    let listed: serde_json::Value = serde_json::from_slice(
        &Test::new()
            .args(["ports", "--json", "--name", &cluster.name])
            .run()
            .stdout,
    )
    .unwrap();
    let entry = listed["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["published_port"] == port)
        .expect("listed");
    assert_eq!(entry["service"], "late");
    assert_eq!(entry["state"], "forwarding");
    assert_eq!(entry["address"], format!("127.0.0.1:{port}"));
    assert_eq!(entry["backends"].as_array().unwrap().len(), 1);

    cluster.docker([
        "service",
        "update",
        "--detach=false",
        "--publish-rm",
        &format!("{port}:8080"),
        "late",
    ]);
    assert!(
        within(Duration::from_secs(3), || http_get(port, "/api/quote").is_none()).is_some(),
        "an unpublished port stops answering"
    );
}

#[test]
fn a_port_taken_on_the_host_is_reported_and_others_keep_working() {
    let cluster = TestCluster::create("taken", &["--workers", "1"]);
    load_demo(&cluster);
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let free = free_port();
    cluster.docker([
        "service",
        "create",
        "--name",
        "blocked",
        "--detach=false",
        "-p",
        &format!("{taken}:8080"),
        DEMO,
    ]);
    cluster.docker([
        "service",
        "create",
        "--name",
        "open",
        "--detach=false",
        "-p",
        &format!("{free}:8080"),
        DEMO,
    ]);
    assert!(within(Duration::from_secs(3), || http_get(free, "/api/quote").is_some()).is_some());

    let output = Test::new()
        .args(["ports", "--name", &cluster.name])
        .stderr_has(&format!("127.0.0.1:{taken} is already in use"))
        .run();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("port-taken") && table.contains("forwarding"), "{table}");
    let logs = host_docker(["logs", &format!("{}-ports", cluster.name)]);
    assert!(logs.contains(&format!("127.0.0.1:{taken} is already in use")), "{logs}");

    drop(squatter);
    assert!(
        within(Duration::from_secs(3), || http_get(taken, "/api/quote").is_some()).is_some(),
        "the port answers once it is free"
    );
}

/// Host-mode ports answer on the nodes running a task; the forwarder
/// connects to those nodes the way it uses the routing mesh where the
/// kernel has one.
#[test]
fn ports_published_in_host_mode_reach_the_nodes_running_the_tasks() {
    let cluster = TestCluster::create("hostmode", &["--workers", "1"]);
    load_demo(&cluster);
    let port = free_port();
    cluster.docker([
        "service",
        "create",
        "--name",
        "edge",
        "--detach=false",
        "--replicas",
        "2",
        "--publish",
        &format!("mode=host,published={port},target=8080"),
        DEMO,
    ]);
    assert!(within(Duration::from_secs(3), || http_get(port, "/api/quote").is_some()).is_some());
    let listed: serde_json::Value = serde_json::from_slice(
        &Test::new()
            .args(["ports", "--json", "--name", &cluster.name])
            .run()
            .stdout,
    )
    .unwrap();
    let entry = &listed["ports"][0];
    assert_eq!(entry["path"], "host-mode", "{listed}");
    assert_eq!(entry["publish_mode"], "host");
    let nodes: BTreeSet<&str> = entry["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 2, "one task on each node: {listed}");
    let replicas: BTreeSet<String> = (0..20)
        .filter_map(|_| http_get(port, "/api/quote"))
        .map(|body| serde_json::from_str::<serde_json::Value>(&body).unwrap()["ipAddress"].to_string())
        .collect();
    assert_eq!(replicas.len(), 2, "both tasks answer: {replicas:?}");
}

/// What a forwarder container hands to a client that carries no demo of its
/// own (built on macOS or Windows; the real-host lane's remote phase runs
/// one): the static Linux demo, byte for byte.
#[test]
fn the_hidden_write_demo_hands_out_the_static_linux_demo() {
    let output = crate::support::swarmlab_command()
        .args(["image", "write-demo"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.starts_with(b"\x7fELF"), "not an ELF binary");
    assert!(output.stdout.len() > 100 * 1024, "{} bytes", output.stdout.len());
}
