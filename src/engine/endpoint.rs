//! Which engine is the host engine, found exactly as the docker CLI finds
//! it: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`), else
//! `DOCKER_CONTEXT`, else the current context of the docker config
//! (`DOCKER_CONFIG`, default `~/.docker`), else the local socket. swarmlab's
//! own variables come first: `swarmlab env` points `DOCKER_HOST` at a
//! cluster and keeps the host engine in `SWARMLAB_DOCKER_HOST` (with
//! `SWARMLAB_DOCKER_CERT_PATH` for TLS) or `SWARMLAB_DOCKER_CONTEXT`.
//!
//! Pure over the environment it is given and the files under the docker
//! config folder, so that it is tested without an engine.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(crate) const HOST_VAR: &str = "SWARMLAB_DOCKER_HOST";
pub(crate) const CERT_PATH_VAR: &str = "SWARMLAB_DOCKER_CERT_PATH";
pub(crate) const CONTEXT_VAR: &str = "SWARMLAB_DOCKER_CONTEXT";
/// Written into the description of the docker contexts swarmlab makes for
/// clusters, before the host engine's own endpoint: a cluster's context is
/// never taken for the host engine.
pub(crate) const HOST_MARK: &str = "host engine: ";

#[cfg(windows)]
pub(crate) const DEFAULT_HOST: &str = "npipe:////./pipe/docker_engine";
#[cfg(not(windows))]
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where an engine is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As DOCKER_HOST writes it: unix://, tcp://, ssh:// or npipe://.
    pub host: String,
    /// A folder with ca.pem, cert.pem and key.pem, for TLS.
    pub tls: Option<PathBuf>,
    /// Where it was found, for messages and for `swarmlab env`.
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// SWARMLAB_DOCKER_HOST or DOCKER_HOST.
    Variable(&'static str),
    /// A docker context, by name, and how it was chosen.
    Context { name: String, chosen_by: &'static str },
    /// Nothing said which: the local socket.
    Default,
}

impl Endpoint {
    /// The exports that keep this engine swarmlab's after DOCKER_HOST has
    /// been pointed elsewhere.
    pub fn exports(&self) -> Vec<(&'static str, String)> {
        match &self.source {
            Source::Context { name, .. } => vec![(CONTEXT_VAR, name.clone())],
            _ => {
                let mut exports = vec![(HOST_VAR, self.host.clone())];
                if let Some(dir) = &self.tls {
                    exports.push((CERT_PATH_VAR, dir.display().to_string()));
                }
                exports
            }
        }
    }

    /// How it was chosen, for messages.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Variable(var) => format!("{} (from {var})", self.host),
            Source::Context { name, chosen_by } => format!("{} (docker context {name}, from {chosen_by})", self.host),
            Source::Default => self.host.clone(),
        }
    }
}

/// Finds the host engine. `var` reads an environment variable; `home` is
/// the user's home folder (for `~/.docker`).
pub(crate) fn resolve(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Result<Endpoint> {
    let config = config_dir(var, home);
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(name) = var(CONTEXT_VAR) {
        return context(config.as_deref(), &name, CONTEXT_VAR, true);
    }
    if let Some(host) = var(HOST_VAR) {
        return Ok(Endpoint {
            host,
            tls: var(CERT_PATH_VAR).map(PathBuf::from),
            source: Source::Variable(HOST_VAR),
        });
    }
    if let Some(host) = var("DOCKER_HOST") {
        let verify = var("DOCKER_TLS_VERIFY").is_some() || var("DOCKER_TLS").is_some();
        let tls = verify.then(|| var("DOCKER_CERT_PATH").map(PathBuf::from).or_else(|| config.clone()));
        return Ok(Endpoint {
            host,
            tls: tls.flatten(),
            source: Source::Variable("DOCKER_HOST"),
        });
    }
    if let Some(name) = var("DOCKER_CONTEXT") {
        return context(config.as_deref(), &name, "DOCKER_CONTEXT", true);
    }
    if let Some(name) = config.as_deref().and_then(current_context) {
        return context(config.as_deref(), &name, "the docker config's currentContext", true);
    }
    Ok(default())
}

/// The docker config folder: `DOCKER_CONFIG`, else `~/.docker`.
pub(crate) fn config_dir(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    var("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".docker")))
}

fn default() -> Endpoint {
    Endpoint {
        host: DEFAULT_HOST.to_string(),
        tls: None,
        source: Source::Default,
    }
}

/// The context `docker context use` chose, from config.json.
fn current_context(config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["currentContext"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The endpoint of context `name`. The docker CLI keeps each context in
/// `contexts/meta/<digest of its name>/meta.json` and its TLS files in
/// `contexts/tls/<same digest>/docker/`; the folders are found by the name
/// their meta.json holds.
/// `follow`: a cluster's context leads to its host engine's; that one is
/// taken as it is (two contexts naming each other would lead nowhere).
fn context(config: Option<&Path>, name: &str, chosen_by: &'static str, follow: bool) -> Result<Endpoint> {
    if name == "default" {
        return Ok(default());
    }
    let missing = || {
        Error::invalid(format!(
            "docker context {name:?} (from {chosen_by}) does not exist: `docker context ls` lists them"
        ))
    };
    let config = config.ok_or_else(missing)?;
    let metas = std::fs::read_dir(config.join("contexts").join("meta")).map_err(|_| missing())?;
    for folder in metas.flatten() {
        let Ok(text) = std::fs::read_to_string(folder.path().join("meta.json")) else {
            continue;
        };
        let Ok(meta) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if meta["Name"].as_str() != Some(name) {
            continue;
        }
        // A cluster's context made by `swarmlab context` names the host
        // engine it belongs to.
        if let Some(host) = meta["Metadata"]["Description"]
            .as_str()
            .and_then(|d| d.split_once(HOST_MARK))
            .map(|(_, host)| host.trim().to_string())
            .filter(|_| follow)
        {
            return host_of_cluster_context(config, name, &host, chosen_by);
        }
        let endpoint = &meta["Endpoints"]["docker"];
        let host = endpoint["Host"].as_str().ok_or_else(|| {
            Error::invalid(format!(
                "docker context {name:?} has no docker endpoint: `docker context inspect {name}` shows it"
            ))
        })?;
        let tls = config
            .join("contexts")
            .join("tls")
            .join(folder.file_name())
            .join("docker");
        return Ok(Endpoint {
            host: host.to_string(),
            tls: tls.join("ca.pem").is_file().then_some(tls),
            source: Source::Context {
                name: name.to_string(),
                chosen_by,
            },
        });
    }
    Err(missing())
}

/// The host engine of a cluster whose context is the current one: the
/// context named after HOST_MARK, or an address.
fn host_of_cluster_context(
    config: &Path,
    cluster_context: &str,
    host: &str,
    chosen_by: &'static str,
) -> Result<Endpoint> {
    match host.strip_prefix("context ") {
        Some(name) if name != cluster_context => context(Some(config), name, chosen_by, false),
        Some(_) => Ok(default()),
        None => Ok(Endpoint {
            host: host.to_string(),
            tls: None,
            source: Source::Context {
                name: cluster_context.to_string(),
                chosen_by,
            },
        }),
    }
}

/// How a context made by `swarmlab context` names its host engine.
pub(crate) fn host_mark(host: &Endpoint) -> String {
    match &host.source {
        Source::Context { name, .. } => format!("{HOST_MARK}context {name}"),
        _ => format!("{HOST_MARK}{}", host.host),
    }
}

#[cfg(test)]
mod tests;
