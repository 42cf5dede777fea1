//! Bad input and unmet conditions: one line on stderr, a non-zero exit code,
//! and nothing left behind.

use std::net::TcpListener;

use crate::support::{Test, TestCluster, leftovers, unique};

#[test]
fn invalid_names_and_counts_are_refused() {
    Test::new()
        .args(["create", "--name", "Bad_Name"])
        .fails_with(2, "invalid cluster name")
        .run();
    Test::new()
        .args(["inspect", "--name", "-x"])
        .fails_with(2, "see `swarmlab inspect --help`")
        .run();
    Test::new()
        .args(["create", "--managers", "0"])
        .fails_with(2, "at least one manager")
        .run();
    Test::new()
        .args(["create", "--workers", "-1"])
        .fails_with(2, "expected a whole number")
        .run();
    Test::new()
        .args(["create", "--workers", "many"])
        .fails_with(2, "expected a whole number")
        .run();
    Test::new()
        .args(["create", "--managers", "10"])
        .fails_with(2, "at most 9 managers")
        .run();
    Test::new()
        .args(["create", "--heartbeat", "soon"])
        .fails_with(2, "expected a duration")
        .run();
    Test::new()
        .args(["create", "--name", &unique("privileged")])
        .env("SWARMLAB_PRIVILEGED", "always")
        .fails_with(2, "use auto, try or no")
        .run();
    Test::new()
        .args(["frobnicate"])
        .fails_with(2, "unrecognized subcommand")
        .run();
}

/// Numbers too big to make sense are refused when parsed, before anything
/// is made: no deadline or node list is ever computed from them.
#[test]
fn durations_counts_and_ports_are_bounded() {
    let name = unique("bounds");
    let long = "is longer than the longest swarmlab waits";
    let many = "is more than a cluster can hold";
    for (args, expected) in [
        (vec!["create", "--name", &name, "--wait", "99999999999h"], long),
        (
            vec!["create", "--name", &name, "--heartbeat", "0s"],
            "too short for an interval",
        ),
        (vec!["demo", "--name", &name, "--workers", "4000000000"], many),
        (vec!["demo", "--name", &name, "--port", "0"], "expected a port"),
        (vec!["demo", "--name", &name, "--timeout", "99999999999h"], long),
        (vec!["demo", "--name", &name, "--replicas", "0"], "not in 1..=1000"),
        (
            vec!["demo", "--name", &name, "--workers", "3", "--replicas", "3"],
            "use --replicas 4 or more",
        ),
        (
            vec!["demo", "--name", &name, "--workers", "1"],
            "use --workers 2 or more",
        ),
        (vec!["node", "add", "--name", &name, "--count", "4000000000"], many),
        (vec!["wait", "--name", &name, "--timeout", "99999999999h"], long),
        (
            vec!["task", "kill", "--name", &name, "--count", "99999999999999999999"],
            "expected a whole number",
        ),
        (
            vec!["node", "crash", "worker-1", "--name", &name, "--timeout", "1000000d"],
            long,
        ),
        (
            vec!["ports", "serve", "--name", &name, "--interval", "0s"],
            "too short for an interval",
        ),
    ] {
        Test::new().args(&args).fails_with(2, expected).run();
    }
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// A cluster file that would open a node's engine API is refused with the
/// file position, before anything is made.
#[test]
fn cluster_files_cannot_open_a_nodes_api() {
    let name = unique("openapi");
    let file = std::env::temp_dir().join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!("name = \"{name}\"\n\n[role.worker]\ndockerd_args = [\"--host=tcp://0.0.0.0:2375\"]\n"),
    )
    .unwrap();
    Test::new()
        .args(["create", "--config", file.to_str().unwrap()])
        .fails_with(2, ":4:1: dockerd_args may not contain \"--host=tcp://0.0.0.0:2375\"")
        .run();
    assert_eq!(leftovers(&name), Vec::<String>::new());
    std::fs::remove_file(file).unwrap();
}

#[test]
fn unknown_clusters_are_named() {
    let name = unique("nosuch");
    for command in ["delete", "inspect", "env"] {
        Test::new()
            .args([command, "--name", &name])
            .fails_with(3, &format!("no cluster named \"{name}\""))
            .run();
    }
}

#[test]
fn a_missing_engine_says_how_to_start_one() {
    Test::new()
        .args(["ls"])
        .env("SWARMLAB_DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .fails_with(5, "no Docker engine answers")
        .stderr_has("dockerd")
        .run();
    Test::new()
        .args(["create"])
        .env("SWARMLAB_DOCKER_HOST", "tcp://127.0.0.1:1")
        .fails_with(5, "no Docker engine answers")
        .run();
}

#[test]
fn a_missing_node_image_says_both_ways_out() {
    let name = unique("noimage");
    Test::new()
        .args(["create", "--name", &name, "--image", "swarmlab-test/missing:1"])
        .fails_with(6, "could not be pulled")
        .stderr_has("swarmlab node-image build")
        .run();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

#[test]
fn an_exhausted_subnet_pool_is_reported() {
    // A pool of exactly one cluster network.
    let pool = "172.31.250.0/24";
    let only = Test::new()
        .env("SWARMLAB_SUBNET_POOL", pool)
        .args(["create", "--name", &unique("pool-a"), "--workers", "0"])
        .run();
    assert!(only.status.success());
    let first = TestCluster::adopt(&unique("pool-a"));
    let name = unique("pool-b");
    Test::new()
        .env("SWARMLAB_SUBNET_POOL", pool)
        .args(["create", "--name", &name, "--workers", "0"])
        .fails_with(7, "no free subnet left in 172.31.250.0/24")
        .run();
    assert_eq!(leftovers(&name), Vec::<String>::new());
    Test::new()
        .env("SWARMLAB_SUBNET_POOL", "10.9.0.0/16")
        .args(["create", "--name", &name])
        .fails_with(2, "overlaps 10.0.0.0/8")
        .run();
    first.delete();
}

#[test]
fn a_taken_api_port_is_reported() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let name = unique("port");
    Test::new()
        .args(["create", "--name", &name, "--workers", "1", "--api-port", &port])
        .fails_with(7, &format!("host port 127.0.0.1:{port} is already in use"))
        .run();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}
