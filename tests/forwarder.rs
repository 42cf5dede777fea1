//! The port forwarder's own limits: its container's, the connections it
//! takes on, idle connections, and the node namespaces it enters.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::{
    Test, TestCluster, deploy, free_port, host_docker, http_get, json, leftovers, swarmlab_command, unique, within,
};

/// A foreground forwarder, killed when the test ends however it ends.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Foreground {
    /// Its threads, by name.
    fn threads(&self) -> Vec<String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.0.id())).unwrap();
        let mut names: Vec<String> = tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect();
        names.sort();
        names
    }
}

/// Whether the peer closes `stream` within `limit` (a read returns end of
/// file or a reset, after whatever it had sent) without our sending
/// anything more.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    let mut buffer = [0u8; 4096];
    loop {
        let Some(left) = deadline
            .checked_duration_since(std::time::Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return false;
        };
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }
}

fn replica(port: u16) -> Option<String> {
    let body = http_get(port, "/api/quote")?;
    let quote: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(quote["ipAddress"].as_str()?.to_string())
}

#[test]
fn the_forwarder_caps_connections_closes_idle_ones_and_follows_restarted_nodes() {
    let cluster = TestCluster::create("fwd", &["--workers", "1"]);
    let name = cluster.name.clone();
    let container = format!("{name}-ports");
    let limits = host_docker([
        "inspect",
        "-f",
        "{{.HostConfig.PidsLimit}} {{.HostConfig.Memory}}",
        &container,
    ]);
    assert_eq!(
        limits.trim(),
        "512 268435456",
        "pids and memory limits on its container"
    );

    let port = free_port();
    Test::new()
        .args(["image", "load", "swarmlab/quotes:latest", "--name", &name])
        .run();
    // One task on each node, so that both nodes' namespaces are used.
    cluster.docker([
        "service",
        "create",
        "--name",
        "web",
        "--detach=false",
        "--mode",
        "global",
        "-p",
        &format!("{port}:8080"),
        "swarmlab/quotes:latest",
    ]);

    // The container's forwarder makes way for one in the foreground with
    // small limits, the same binary and code.
    host_docker(["stop", &container]);
    let status = std::env::temp_dir().join(format!("{name}-ports.json"));
    let forwarder = swarmlab_command()
        .args(["ports", "serve", "--name", &name, "--interval", "200ms"])
        .args(["--max-connections", "3", "--idle-timeout", "4s"])
        .arg("--status-file")
        .arg(&status)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut forwarder = Foreground(forwarder);
    assert!(
        within(Duration::from_secs(15), || replica(port).is_some()).is_some(),
        "it forwards"
    );
    let threads_before = forwarder.threads();

    // Three connections take every slot: each has been answered, so the
    // forwarder holds it (the service keeps a connection 10 s) ...
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream
                .write_all(b"GET /api/quote HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut answer = [0u8; 64];
            let read = stream.read(&mut answer).unwrap();
            assert!(
                answer[..read].starts_with(b"HTTP/1.1 200"),
                "a held connection is forwarded"
            );
            stream
        })
        .collect();
    // ... a fourth is closed at once, well before the idle timeout.
    let mut refused = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(
        closed_within(&mut refused, Duration::from_secs(2)),
        "over the cap: closed at once"
    );
    assert_eq!(forwarder.threads(), threads_before, "no thread per connection");
    assert_eq!(
        threads_before.iter().filter(|t| *t == "netns-sockets").count(),
        1,
        "one thread makes the sockets in nodes: {threads_before:?}"
    );
    // Idle for 4 s, the three are closed by the forwarder (the service
    // itself waits 10 s), and their slots are free again.
    for stream in &mut held {
        assert!(
            closed_within(stream, Duration::from_secs(8)),
            "idle connections are closed"
        );
    }
    assert!(
        within(Duration::from_secs(5), || replica(port).is_some()).is_some(),
        "slots come back"
    );

    // A node that restarts has a new network namespace: the forwarder
    // follows it and reaches both tasks again.
    host_docker(["restart", "-t", "2", &format!("{name}-worker-1")]);
    Test::new().args(["wait", "--name", &name, "--timeout", "2m"]).run();
    let both = within(Duration::from_secs(30), || {
        let answered: BTreeSet<String> = (0..10).filter_map(|_| replica(port)).collect();
        answered.len() == 2
    });
    assert!(both.is_some(), "both tasks answer after worker-1 restarted");

    forwarder.0.kill().unwrap();
    let mut log = String::new();
    forwarder.0.stdout.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("3 connections are open, the forwarder's cap"), "{log}");
    let _ = std::fs::remove_file(status);
    host_docker(["start", &container]);
    cluster.delete();
}

/// Where the engine's host network is not the client's (Docker Desktop, a
/// rootless or a remote engine), the forwarder sits on the cluster network,
/// unprivileged, and each published port gets a port container that the
/// engine publishes on its 127.0.0.1. Forced here with
/// SWARMLAB_PORTS_REACH=published. This kernel has no IPVS, so host-mode
/// ports are what can answer, and an ingress port says why it cannot.
#[test]
fn port_containers_publish_the_ports_where_the_engine_is_elsewhere() {
    let cluster = TestCluster::create_with_env("reach", &[("SWARMLAB_PORTS_REACH", "published")], &["--workers", "2"]);
    let name = cluster.name.clone();
    let forwarder = host_docker([
        "inspect",
        "-f",
        "{{.HostConfig.NetworkMode}}|{{.HostConfig.PidMode}}|{{len .HostConfig.CapAdd}}",
        &format!("{name}-ports"),
    ]);
    assert_eq!(
        forwarder.trim(),
        format!("{name}-net||0"),
        "on the cluster network, unprivileged"
    );

    let port = free_port();
    deploy(
        &cluster,
        "web",
        2,
        &["--publish", &format!("mode=host,published={port},target=8080")],
    );
    assert!(
        within(Duration::from_secs(20), || http_get(port, "/api/quote").is_some()).is_some(),
        "the host-mode port answers on 127.0.0.1 through its port container"
    );
    let port_container = format!("{name}-port-{port}");
    assert_eq!(
        host_docker([
            "inspect",
            "-f",
            "{{.State.Running}} {{index .Config.Labels \"io.swarmlab.cluster\"}}",
            &port_container
        ])
        .trim(),
        format!("true {name}")
    );
    let answered: BTreeSet<String> = (0..12).filter_map(|_| replica(port)).collect();
    assert_eq!(answered.len(), 2, "both replicas answer: {answered:?}");

    // stop takes the forwarder down before its port containers (it would
    // start them again), start brings the nodes back and the forwarder
    // makes its port containers again.
    Test::new().args(["stop", "--name", &name]).run();
    assert!(
        http_get(port, "/api/quote").is_none(),
        "nothing answers a stopped cluster"
    );
    assert_eq!(
        host_docker(["inspect", "-f", "{{.State.Running}}", &port_container]).trim(),
        "false"
    );
    Test::new().args(["start", "--name", &name]).run();
    assert!(
        within(Duration::from_secs(30), || http_get(port, "/api/quote").is_some()).is_some(),
        "the port answers again after start"
    );

    if !std::path::Path::new("/proc/net/ip_vs").exists() {
        let mesh = free_port();
        cluster.docker([
            "service",
            "create",
            "--name",
            "mesh",
            "--detach=false",
            "-p",
            &format!("{mesh}:8080"),
            "swarmlab/quotes:latest",
        ]);
        let said = within(Duration::from_secs(10), || {
            let ports = json(&Test::new().args(["ports", "--name", &name, "--json"]).run());
            ports["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["published_port"] == mesh && p["message"].as_str().unwrap_or("").contains("no IPVS"))
        });
        assert!(said.is_some(), "an ingress port without IPVS says why it cannot answer");
    }

    cluster.docker(["service", "rm", "web"]);
    let gone = within(Duration::from_secs(15), || {
        host_docker([
            "ps",
            "-a",
            "--filter",
            &format!("name=^{port_container}$"),
            "--format",
            "{{.Names}}",
        ])
        .trim()
        .is_empty()
    });
    assert!(gone.is_some(), "a port no longer published loses its port container");
    assert!(http_get(port, "/api/quote").is_none());
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// A forwarder image the user names (as a client that is not Linux must)
/// is used instead of one made of this binary; one that cannot be had is a
/// warning, and the cluster is made all the same.
#[test]
fn a_named_forwarder_image_is_used_and_a_missing_one_costs_only_the_ports() {
    let first = TestCluster::create("ownimage", &["--workers", "0"]);
    let own = host_docker(["inspect", "-f", "{{.Config.Image}}", &format!("{}-ports", first.name)]);
    host_docker(["tag", own.trim(), "swarmlab-test/ports:named"]);
    first.delete();

    let named = TestCluster::create_with_env(
        "named",
        &[("SWARMLAB_PORTS_IMAGE", "swarmlab-test/ports:named")],
        &["--workers", "0"],
    );
    let name = named.name.clone();
    assert_eq!(
        host_docker(["inspect", "-f", "{{.Config.Image}}", &format!("{name}-ports")]).trim(),
        "swarmlab-test/ports:named"
    );
    named.delete();

    let name = unique("unpullable");
    Test::new()
        .env("SWARMLAB_PORTS_IMAGE", "127.0.0.1:1/swarmlab/ports:missing")
        .args(["create", "--name", &name, "--workers", "0"])
        .stdout_has("is ready in")
        .stderr_has("cannot be pulled")
        .run();
    let unpullable = TestCluster::adopt(&name);
    assert!(
        host_docker([
            "ps",
            "-a",
            "--filter",
            &format!("name=^{name}-ports$"),
            "--format",
            "{{.Names}}"
        ])
        .trim()
        .is_empty(),
        "no forwarder without its image"
    );
    unpullable.delete();
    host_docker(["rmi", "swarmlab-test/ports:named"]);
}
