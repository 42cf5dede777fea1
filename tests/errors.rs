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
        .fails_with(2, "expected a whole number of nodes")
        .run();
    Test::new()
        .args(["create", "--workers", "many"])
        .fails_with(2, "expected a whole number of nodes")
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
