//! Node images other than the one swarmlab builds.
//!
//! The official docker:dind cannot be pulled on a machine without a
//! registry. What sets it apart for swarmlab is its userland (busybox: sh,
//! awk, find, mount, xargs ...) and an entrypoint of its own; the stand-in
//! below gives swarmlab/node both, so that the node entrypoint is shown to
//! run under busybox and the image's own entrypoint to be bypassed.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{Test, TestCluster, host_docker, leftovers, stdout, unique};

/// swarmlab/node with busybox in place of the tools the node entrypoint
/// uses, and docker:dind's ENTRYPOINT and CMD (a script this image lacks),
/// built by scripts/build-busybox-node, which the real-host lane uses too.
fn busybox_userland_image() -> &'static str {
    static IMAGE: OnceLock<&str> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-busybox-node");
        let status = Command::new(script).status().expect("scripts/build-busybox-node runs");
        assert!(status.success(), "scripts/build-busybox-node failed");
        "swarmlab-test/busybox-node:latest"
    })
}

fn ready_nodes(cluster: &TestCluster) -> Vec<String> {
    let listed = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    let mut nodes: Vec<String> = listed.lines().map(str::to_string).collect();
    nodes.sort();
    nodes
}

#[test]
fn a_node_image_with_a_busybox_userland_makes_a_swarm_and_restarts() {
    let image = busybox_userland_image();
    let cluster = TestCluster::create("busybox", &["--workers", "1", "--image", image]);
    let worker = format!("{}-worker-1", cluster.name);
    assert_eq!(
        host_docker(["exec", &worker, "readlink", "-f", "/bin/sh"]).trim(),
        "/usr/bin/busybox",
        "the node's shell is busybox"
    );
    assert_eq!(ready_nodes(&cluster), ["manager-1 Ready", "worker-1 Ready"]);

    // A stopped and started node keeps its writable layer: the entrypoint
    // must clear the engine's pid files with busybox's find.
    Test::new()
        .args(["stop", "--name", &cluster.name])
        .stdout_has("Stopped")
        .run();
    Test::new()
        .args(["start", "--name", &cluster.name])
        .stdout_has("is back")
        .run();
    assert_eq!(ready_nodes(&cluster), ["manager-1 Ready", "worker-1 Ready"]);

    let name = cluster.name.clone();
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// `SWARMLAB_PRIVILEGED=try` asks the engine for --privileged even where
/// the bounding set says it will refuse. Where the engine grants it the
/// nodes run privileged; where it refuses (this kind of machine), swarmlab
/// falls back by itself to the explicit capability profile. Either way the
/// message tells which, and the nodes make a swarm.
#[test]
fn privileged_is_tried_and_a_refusal_falls_back_by_itself() {
    let name = unique("privileged");
    let output = Test::new()
        .args(["create", "--name", &name, "--workers", "1"])
        .env("SWARMLAB_PRIVILEGED", "try")
        .stdout_has("is ready in")
        .run();
    let cluster = TestCluster::adopt(&name);
    let said_privileged = stdout(&output).contains("nodes run privileged");
    for node in ["manager-1", "worker-1"] {
        let container = format!("{name}-{node}");
        let config = host_docker([
            "inspect",
            "-f",
            "{{.HostConfig.Privileged}} {{.HostConfig.CapDrop}}",
            &container,
        ]);
        if said_privileged {
            assert!(config.starts_with("true"), "{container}: {config}");
        } else {
            assert!(
                stdout(&output).contains("the engine refuses --privileged"),
                "the message says why: {}",
                stdout(&output)
            );
            assert_eq!(config.trim(), "false [SYS_RESOURCE]", "{container}");
        }
    }
    // inspect says the same, from the label the container was made with.
    let security = if said_privileged { "privileged" } else { "capabilities" };
    for row in cluster.inspect()["nodes"].as_array().expect("nodes") {
        assert_eq!(row["security"], security, "{row}");
    }
    assert_eq!(ready_nodes(&cluster), ["manager-1 Ready", "worker-1 Ready"]);
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// Where the client cannot run debootstrap (macOS, Windows, no root), it
/// runs in a container on the engine and the archive comes back through
/// the API: the image is the same kind, labelled with the engine that its
/// dockerd reports, and makes a swarm; no builder container stays. A
/// mirror the engine cannot reach is told in one line within seconds.
/// (One test: each part looks for any builder container left.)
#[test]
fn a_node_image_built_in_a_container_on_the_engine_makes_a_swarm() {
    // One that an interrupted run created and never started: the next
    // build removes it.
    host_docker([
        "create",
        "--label",
        "io.swarmlab.role=node-image-builder",
        "swarmlab/node:latest",
    ]);
    build_in_a_container("swarmlab-test/node:never", &["--mirror", "http://127.0.0.1:9/debian"])
        .fails_with(1, "the node image builder stopped before the root file system was made")
        .run();
    assert_eq!(builder_containers(), "");
    assert!(!crate::support::image_exists("swarmlab-test/node:never"));

    // Ctrl-C stops the builder at once and removes it.
    let child = crate::support::swarmlab_command()
        .args(["node-image", "build", "--engine", "26", "--builder", "container"])
        .args(["--tag", "swarmlab-test/node:interrupted"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let started = Instant::now();
    while builder_containers().is_empty() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("no builder appeared");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = crate::support::stderr_lines(&mut child);
    crate::support::interrupt(&child);
    // At once, not at the end of debootstrap (about 40 s).
    let status = crate::support::exit_within(&mut child, Duration::from_secs(20));
    let stderr: Vec<String> = lines.iter().collect();
    assert_eq!(status.code(), Some(130), "{stderr:?}");
    assert_eq!(builder_containers(), "", "{stderr:?}");
    assert!(!crate::support::image_exists("swarmlab-test/node:interrupted"));

    let tag = "swarmlab-test/node:in-container";
    let built = build_in_a_container(tag, &[])
        .stdout_has("Built node image swarmlab-test/node:in-container with engine 26.1")
        .stderr_has("in a container of")
        .run();
    assert!(built.status.success());
    assert_eq!(builder_containers(), "", "the builder removed itself");
    let listed = crate::support::json(&Test::new().args(["node-image", "ls", "--json"]).run());
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["tags"].as_array().unwrap().iter().any(|t| t == tag))
        .expect("node-image ls lists it");
    assert!(entry["engine"].as_str().unwrap().starts_with("26.1."), "{entry}");

    let cluster = TestCluster::create("in-container", &["--workers", "1", "--image", tag]);
    assert_eq!(ready_nodes(&cluster), ["manager-1 Ready", "worker-1 Ready"]);
    let name = cluster.name.clone();
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
    host_docker(["rmi", tag]);
}

fn build_in_a_container(tag: &str, more: &[&str]) -> Test {
    Test::new()
        .args([
            "node-image",
            "build",
            "--engine",
            "26",
            "--builder",
            "container",
            "--tag",
            tag,
        ])
        .args(more)
}

fn builder_containers() -> String {
    host_docker(["ps", "-aq", "--filter", "label=io.swarmlab.role=node-image-builder"])
}
