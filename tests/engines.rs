//! Finding the host engine as the docker CLI does: docker contexts, the
//! current context, and the exports that keep it after `swarmlab env`.

use std::process::Command;

use crate::support::{Test, TestCluster, stdout};

/// A docker config folder of its own, removed at the end.
struct DockerConfig(std::path::PathBuf);

impl DockerConfig {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("swarmlab-docker-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DockerConfig(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// The docker CLI, with this config folder.
    #[track_caller]
    fn docker(&self, args: &[&str]) -> String {
        let output = Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", &self.0)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout(&output)
    }
}

impl Drop for DockerConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_host_engine_comes_from_docker_contexts_as_for_the_docker_cli() {
    let cluster = TestCluster::create("contexts", &["--workers", "0"]);
    let config = DockerConfig::new("contexts");
    config.docker(&[
        "context",
        "create",
        "lab-engine",
        "--docker",
        "host=unix:///var/run/docker.sock",
    ]);

    // DOCKER_CONTEXT, with no DOCKER_HOST.
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_CONTEXT", "lab-engine")
        .args(["ls"])
        .stdout_has(&cluster.name)
        .run();
    // A context that does not exist: said at once.
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_CONTEXT", "nowhere")
        .args(["ls"])
        .fails_with(2, "docker context \"nowhere\" (from DOCKER_CONTEXT) does not exist")
        .run();
    // The current context; `swarmlab env` then keeps it for swarmlab.
    config.docker(&["context", "use", "lab-engine"]);
    let env = stdout(
        &Test::new()
            .env("DOCKER_CONFIG", config.path())
            .args(["env", "--name", &cluster.name])
            .run(),
    );
    assert!(env.contains("export SWARMLAB_DOCKER_CONTEXT=lab-engine"), "{env}");

    // A cluster's own context made current: swarmlab still finds the
    // engine that runs the nodes.
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .args(["context", "--name", &cluster.name])
        .run();
    let cluster_context = format!("swarmlab-{}", cluster.name);
    config.docker(&["context", "use", &cluster_context]);
    assert_eq!(
        config.docker(&["node", "ls", "--format", "{{.Hostname}}"]).trim(),
        "manager-1"
    );
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .args(["inspect", "--name", &cluster.name])
        .stdout_has("manager-1")
        .run();
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .args(["delete", "--name", &cluster.name])
        .stdout_has("Deleted cluster")
        .run();
}
