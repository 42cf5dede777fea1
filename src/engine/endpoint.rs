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
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Store(PathBuf);

    impl Store {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("swarmlab-contexts-{}", crate::host::random_suffix()));
            std::fs::create_dir_all(dir.join("contexts/meta")).unwrap();
            Store(dir)
        }

        fn context(&self, folder: &str, name: &str, host: &str, description: &str, tls: bool) {
            let meta = self.0.join("contexts/meta").join(folder);
            std::fs::create_dir_all(&meta).unwrap();
            let json = serde_json::json!({
                "Name": name,
                "Metadata": {"Description": description},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}
            });
            std::fs::write(meta.join("meta.json"), json.to_string()).unwrap();
            if tls {
                let dir = self.0.join("contexts/tls").join(folder).join("docker");
                std::fs::create_dir_all(&dir).unwrap();
                for file in ["ca.pem", "cert.pem", "key.pem"] {
                    std::fs::write(dir.join(file), "pem").unwrap();
                }
            }
        }

        fn current(&self, name: &str) {
            std::fs::write(
                self.0.join("config.json"),
                format!("{{\"currentContext\": \"{name}\"}}"),
            )
            .unwrap();
        }

        fn resolve(&self, vars: &[(&str, &str)]) -> Result<Endpoint> {
            let mut vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            vars.insert("DOCKER_CONFIG".into(), self.0.display().to_string());
            resolve(&|name| vars.get(name).cloned(), None)
        }
    }

    impl Drop for Store {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn nothing_said_is_the_local_socket() {
        let store = Store::new();
        let endpoint = store.resolve(&[]).unwrap();
        assert_eq!(endpoint, default());
        assert_eq!(resolve(&|_| None, None).unwrap().source, Source::Default);
    }

    #[test]
    fn the_current_context_with_its_tls_files() {
        let store = Store::new();
        store.context("f00d", "desktop-linux", "tcp://127.0.0.1:2376", "", true);
        store.current("desktop-linux");
        let endpoint = store.resolve(&[]).unwrap();
        assert_eq!(endpoint.host, "tcp://127.0.0.1:2376");
        assert_eq!(endpoint.tls, Some(store.0.join("contexts/tls/f00d/docker")));
        assert!(matches!(endpoint.source, Source::Context { ref name, .. } if name == "desktop-linux"));
        assert_eq!(endpoint.exports(), [(CONTEXT_VAR, "desktop-linux".to_string())]);
    }

    #[test]
    fn docker_context_over_the_current_one_and_docker_host_over_both() {
        let store = Store::new();
        store.context("a1", "rootless", "unix:///run/user/1000/docker.sock", "", false);
        store.context("b2", "desktop-linux", "tcp://127.0.0.1:2376", "", false);
        store.current("desktop-linux");
        let chosen = store.resolve(&[("DOCKER_CONTEXT", "rootless")]).unwrap();
        assert_eq!(chosen.host, "unix:///run/user/1000/docker.sock");
        assert_eq!(chosen.tls, None);
        let host = store
            .resolve(&[
                ("DOCKER_CONTEXT", "rootless"),
                ("DOCKER_HOST", "tcp://10.1.2.3:2376"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/certs"),
            ])
            .unwrap();
        assert_eq!(host.host, "tcp://10.1.2.3:2376");
        assert_eq!(host.tls, Some(PathBuf::from("/certs")));
        assert_eq!(host.source, Source::Variable("DOCKER_HOST"));
        assert_eq!(store.resolve(&[("DOCKER_CONTEXT", "default")]).unwrap(), default());
    }

    #[test]
    fn swarmlabs_own_variables_come_first() {
        let store = Store::new();
        store.context("a1", "rootless", "unix:///run/user/1000/docker.sock", "", false);
        let kept = store
            .resolve(&[
                ("DOCKER_HOST", "tcp://127.0.0.1:41234"),
                (HOST_VAR, "tcp://engine:2376"),
                (CERT_PATH_VAR, "/tls"),
            ])
            .unwrap();
        assert_eq!(kept.host, "tcp://engine:2376");
        assert_eq!(kept.tls, Some(PathBuf::from("/tls")));
        assert_eq!(
            kept.exports(),
            [
                (HOST_VAR, "tcp://engine:2376".to_string()),
                (CERT_PATH_VAR, "/tls".to_string())
            ],
            "TLS is kept by swarmlab env"
        );
        let context = store
            .resolve(&[("DOCKER_HOST", "tcp://127.0.0.1:41234"), (CONTEXT_VAR, "rootless")])
            .unwrap();
        assert_eq!(context.host, "unix:///run/user/1000/docker.sock");
    }

    #[test]
    fn a_clusters_context_leads_back_to_its_host_engine() {
        let store = Store::new();
        store.context("a1", "rootless", "unix:///run/user/1000/docker.sock", "", false);
        store.context(
            "c3",
            "swarmlab-lab",
            "tcp://127.0.0.1:40000",
            "swarmlab cluster lab; host engine: context rootless",
            true,
        );
        store.context(
            "d4",
            "swarmlab-two",
            "tcp://127.0.0.1:40001",
            "swarmlab cluster two; host engine: unix:///var/run/docker.sock",
            true,
        );
        store.current("swarmlab-lab");
        assert_eq!(store.resolve(&[]).unwrap().host, "unix:///run/user/1000/docker.sock");
        store.current("swarmlab-two");
        assert_eq!(store.resolve(&[]).unwrap().host, "unix:///var/run/docker.sock");
        let mark = host_mark(&store.resolve(&[("DOCKER_CONTEXT", "rootless")]).unwrap());
        assert_eq!(mark, "host engine: context rootless");
        // Two cluster contexts that name each other end, at the second.
        store.context(
            "e5",
            "swarmlab-a",
            "tcp://127.0.0.1:40002",
            "host engine: context swarmlab-b",
            false,
        );
        store.context(
            "f6",
            "swarmlab-b",
            "tcp://127.0.0.1:40003",
            "host engine: context swarmlab-a",
            false,
        );
        store.current("swarmlab-a");
        assert_eq!(store.resolve(&[]).unwrap().host, "tcp://127.0.0.1:40003");
    }

    #[test]
    fn a_missing_context_is_a_clear_error() {
        let store = Store::new();
        let missing = store.resolve(&[("DOCKER_CONTEXT", "gone")]).unwrap_err();
        assert_eq!(missing.exit_code(), 2);
        assert!(
            missing
                .to_string()
                .contains("docker context \"gone\" (from DOCKER_CONTEXT) does not exist"),
            "{missing}"
        );
        store.current("also-gone");
        assert!(store.resolve(&[]).unwrap_err().to_string().contains("currentContext"));
    }
}
