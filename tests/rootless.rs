//! A rootless engine (scripts/rootless-engine starts one beside the
//! machine's own): the engine's network is rootlesskit's, not this
//! machine's, and on this cgroup v1 machine it delegates no cgroup to its
//! containers. The nodes run privileged within its user namespace, their
//! own engines rootless, and published ports come to 127.0.0.1 through
//! port containers that rootlesskit publishes.

use std::process::Command;
use std::time::Duration;

use crate::support::{Test, free_port, http_get, json, unique, within};

fn rootless_host() -> String {
    crate::support::engine_from_script("rootless-engine")
}

/// The docker CLI against the rootless engine.
#[track_caller]
fn rootless_docker(host: &str, args: &[&str]) -> String {
    let output = Command::new("docker").arg("-H").arg(host).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Deletes the cluster on the rootless engine however the test ends.
struct Deleting<'a> {
    host: &'a str,
    name: &'a str,
}

impl Drop for Deleting<'_> {
    fn drop(&mut self) {
        let _ = crate::support::swarmlab_command()
            .args(["delete", "--name", self.name])
            .env("DOCKER_HOST", self.host)
            .output();
    }
}

#[test]
fn a_rootless_engine_runs_the_lab() {
    let host = rootless_host();
    let name = unique("rootless");
    let _deleting = Deleting {
        host: &host,
        name: &name,
    };
    let swarmlab = || Test::new().env("DOCKER_HOST", &host);
    swarmlab()
        .args(["create", "--name", &name, "--workers", "1"])
        .stdout_has("is ready in")
        .stdout_has("nodes run privileged")
        .run();
    let inspected = json(&swarmlab().args(["inspect", "--name", &name, "--json"]).run());
    let nodes = inspected["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{inspected}");
    assert!(
        nodes
            .iter()
            .all(|n| n["security"] == "privileged" && n["swarm_state"] == "ready"),
        "{inspected}"
    );
    let manager = format!("{name}-manager-1");
    let inner = rootless_docker(
        &host,
        &[
            "exec",
            &manager,
            "docker",
            "info",
            "--format",
            "{{json .SecurityOptions}}",
        ],
    );
    assert!(inner.contains("rootless"), "the node's engine runs rootless: {inner}");

    swarmlab()
        .args(["image", "load", "swarmlab/quotes:latest", "--name", &name])
        .run();
    let port = free_port();
    rootless_docker(
        &host,
        &[
            "exec",
            &manager,
            "docker",
            "service",
            "create",
            "--name",
            "web",
            "--detach=false",
            "--replicas",
            "2",
            "--publish",
            &format!("mode=host,published={port},target=8080"),
            "swarmlab/quotes:latest",
        ],
    );
    assert!(
        within(Duration::from_secs(30), || http_get(port, "/api/quote").is_some()).is_some(),
        "the service answers on this machine's 127.0.0.1 through its port container"
    );
    assert_eq!(
        rootless_docker(
            &host,
            &["inspect", "-f", "{{.State.Running}}", &format!("{name}-port-{port}")]
        )
        .trim(),
        "true"
    );

    swarmlab().args(["delete", "--name", &name]).run();
    let filter = format!("label=io.swarmlab.cluster={name}");
    let left = [
        rootless_docker(&host, &["ps", "-aq", "--filter", &filter]),
        rootless_docker(&host, &["volume", "ls", "-q", "--filter", &filter]),
        rootless_docker(&host, &["network", "ls", "-q", "--filter", &filter]),
    ]
    .concat();
    assert_eq!(left.trim(), "", "delete leaves nothing on the rootless engine");
}
