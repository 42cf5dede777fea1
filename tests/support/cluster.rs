//! Clusters made for one test: made, reached with the docker CLI through
//! `swarmlab env`, and deleted when the test ends however it ends.

use std::collections::BTreeMap;
use std::process::Command;

use super::{Test, host_docker, stdout, swarmlab_command, unique};

/// A cluster made for one test, deleted when the test ends however it ends.
pub struct TestCluster {
    pub name: String,
    deleted: bool,
}

impl TestCluster {
    #[track_caller]
    pub fn create(name: &str, args: &[&str]) -> Self {
        Self::create_with_env(name, &[], args)
    }

    /// Like `create`, with variables set for swarmlab (they choose how
    /// the cluster is made).
    #[track_caller]
    pub fn create_with_env(name: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let cluster = TestCluster {
            name: unique(name),
            deleted: false,
        };
        let mut test = Test::new().args(["create", "--name", &cluster.name]).args(args);
        for (key, value) in env {
            test = test.env(key, value);
        }
        test.stdout_has("is ready in").run();
        cluster
    }

    /// Takes charge of a cluster created some other way, to delete it at the end.
    pub fn adopt(name: &str) -> Self {
        TestCluster {
            name: name.to_string(),
            deleted: false,
        }
    }

    /// What `swarmlab env` exports, as key and value.
    #[track_caller]
    pub fn env(&self) -> BTreeMap<String, String> {
        let output = Test::new().args(["env", "--name", &self.name]).run();
        stdout(&output)
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    }

    /// The docker CLI pointed at the cluster with `swarmlab env`.
    #[track_caller]
    pub fn docker<I: IntoIterator<Item = S>, S: AsRef<str>>(&self, args: I) -> String {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        let output = Command::new("docker")
            .args(&args)
            .envs(self.env())
            .output()
            .expect("docker runs");
        assert!(
            output.status.success(),
            "docker {} against {} failed: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `docker service ps` of the tasks of `service` meant to run, a line
    /// each in Go template `format` (e.g. "{{.Node}}").
    #[track_caller]
    pub fn tasks(&self, service: &str, format: &str) -> String {
        self.docker([
            "service",
            "ps",
            service,
            "--filter",
            "desired-state=running",
            "--format",
            format,
        ])
    }

    /// The ID of `image` as the engine inside node `host` (e.g. worker-1) has it.
    #[track_caller]
    pub fn node_image_id(&self, host: &str, image: &str) -> String {
        host_docker([
            "exec",
            &format!("{}-{host}", self.name),
            "docker",
            "image",
            "inspect",
            "-f",
            "{{.Id}}",
            image,
        ])
    }

    /// `swarmlab inspect --json` of the cluster.
    #[track_caller]
    pub fn inspect(&self) -> serde_json::Value {
        let output = Test::new().args(["inspect", "--json", "--name", &self.name]).run();
        serde_json::from_slice(&output.stdout).expect("inspect prints JSON")
    }

    #[track_caller]
    pub fn delete(mut self) {
        Test::new()
            .args(["delete", "--name", &self.name])
            .stdout_has("Deleted cluster")
            .run();
        self.deleted = true;
    }
}

impl TestCluster {
    /// For a failed test's output: the swarm as a manager sees it, and the
    /// end of every node's engine log.
    fn tell_where_things_stand(&self) {
        let run = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .map(|o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .unwrap_or_default()
        };
        let label = format!("label=io.swarmlab.cluster={}", self.name);
        let containers = run("docker", &["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]);
        // A worker cannot list the swarm; the first manager that answers can.
        for container in containers.lines() {
            let nodes = run("docker", &["exec", container, "docker", "node", "ls"]);
            if nodes.contains("HOSTNAME") {
                eprintln!("--- docker node ls (from {container})\n{nodes}");
                break;
            }
        }
        for container in containers.lines() {
            eprintln!(
                "--- {container}: the end of its log\n{}",
                run("docker", &["logs", "--tail", "15", container])
            );
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        if std::thread::panicking() {
            self.tell_where_things_stand();
        }
        let _ = swarmlab_command().args(["delete", "--name", &self.name]).output();
    }
}

/// Loads the demo image into the cluster and runs it as `service`.
#[track_caller]
pub fn deploy(cluster: &TestCluster, service: &str, replicas: u32, extra: &[&str]) {
    Test::new()
        .args(["image", "load", "swarmlab/quotes:latest", "--name", &cluster.name])
        .run();
    let replicas = replicas.to_string();
    let mut args = vec![
        "service",
        "create",
        "--name",
        service,
        "--detach=false",
        "--replicas",
        &replicas,
    ];
    args.extend(extra);
    args.push("swarmlab/quotes:latest");
    cluster.docker(args);
}

/// The swarm's Ready nodes: hostname to node ID.
#[track_caller]
pub fn node_ids(cluster: &TestCluster) -> BTreeMap<String, String> {
    cluster
        .docker(["node", "ls", "--format", "{{.Hostname}} {{.ID}} {{.Status}}"])
        .lines()
        .filter(|l| l.ends_with("Ready"))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}
