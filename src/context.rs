//! Docker CLI contexts for clusters: `docker --context swarmlab-NAME ...`
//! without environment variables. The docker CLI owns its context store,
//! so it is the docker CLI that writes it.

use std::process::{Command, Stdio};

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::naming::ClusterName;

/// Creates or updates the context of `cluster`, pointing at its leader.
/// Returns the context's name.
pub async fn write(cluster: &Cluster) -> Result<String> {
    let env = cluster.docker_env().await?;
    let name = cluster.name.context();
    let mut endpoint = format!("host={}", env.docker_host);
    if !env.insecure {
        let dir = env.cert_path.display();
        endpoint.push_str(&format!(",ca={dir}/ca.pem,cert={dir}/cert.pem,key={dir}/key.pem"));
    }
    let verb = if exists(&name) { "update" } else { "create" };
    // Names the host engine too: with this context current, swarmlab still
    // finds the engine that runs the nodes.
    let description = format!(
        "swarmlab cluster {}; {}",
        cluster.name,
        crate::engine::host_mark(&cluster.engine.endpoint)
    );
    let output = docker_cli()
        .args([
            "context",
            verb,
            &name,
            "--description",
            &description,
            "--docker",
            &endpoint,
        ])
        .output()
        .map_err(|e| Error::Prerequisite(format!("cannot run the docker CLI, which owns its contexts: {e}")))?;
    if !output.status.success() {
        return Err(Error::Other(format!(
            "docker context {verb} {name} failed: {}",
            crate::error::one_line(&String::from_utf8_lossy(&output.stderr))
        )));
    }
    Ok(name)
}

/// Removes the context of a cluster, if there is one (and a docker CLI).
pub(crate) fn remove(cluster: &ClusterName) {
    let name = cluster.context();
    if exists(&name) {
        let _ = docker_cli()
            .args(["context", "rm", "--force", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn exists(name: &str) -> bool {
    docker_cli()
        .args(["context", "inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The docker CLI, kept away from whatever context or host the caller's
/// environment selects.
fn docker_cli() -> Command {
    let mut command = Command::new("docker");
    for var in ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
        command.env_remove(var);
    }
    command
}
