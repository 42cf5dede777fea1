//! TLS material of a cluster: a CA, one server identity that every node's
//! engine presents, and one client identity for swarmlab and the docker CLI.
//!
//! The node engines listen on TCP only with `--tlsverify`: besides keeping
//! the API to its owner, dockerd deliberately stalls its start-up by a
//! second when it serves plain TCP, and a node's start-up is what cluster
//! creation waits for.
//!
//! The files live under the user's data directory, laid out as the docker
//! CLI expects for DOCKER_CERT_PATH, and go away with the cluster. The
//! certificates themselves are made in `certs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::addressing::Ipv4Net;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::naming::ClusterName;

mod certs;

use certs::generate;

/// Where the node entrypoint writes the engine's identity (see assets/node-entrypoint.sh).
pub(crate) const NODE_TLS_DIR: &str = "/etc/swarmlab/tls";

/// Set in a container that gets its TLS identity on standard input (CA,
/// certificate and key, PEM, in that order): in its environment the key
/// would show in `docker inspect`.
pub(crate) const STDIN_ENV: &str = "SWARMLAB_TLS=stdin";

/// Whether this process runs in such a container.
pub fn identity_on_stdin() -> bool {
    std::env::var("SWARMLAB_TLS").as_deref() == Ok("stdin")
}
const CA_CERT: &str = "ca.pem";
/// Written by swarmlab before it stopped keeping the CA key; removed when
/// such a cluster's certificates are renewed.
const CA_KEY: &str = "ca-key.pem";
/// When the certificates expire, RFC 3339.
const EXPIRES: &str = "expires";
/// How long certificates are good for.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Certificates this close to expiry are renewed by `swarmlab start`.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const CLIENT_CERT: &str = "cert.pem";
const CLIENT_KEY: &str = "key.pem";
const SERVER_CERT: &str = "server-cert.pem";
const SERVER_KEY: &str = "server-key.pem";

/// swarmlab's data directory: SWARMLAB_HOME, else $XDG_DATA_HOME/swarmlab,
/// else ~/.local/share/swarmlab.
pub(crate) fn data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SWARMLAB_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("swarmlab"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/swarmlab")),
        None => Err(Error::invalid("neither SWARMLAB_HOME nor HOME is set: set one of them")),
    }
}

#[derive(Debug, Clone)]
pub struct ClusterTls {
    dir: PathBuf,
    /// `dir` under the data directory.
    relative: PathBuf,
}

impl ClusterTls {
    /// `engines/<engine ID>/clusters/<cluster>` under the data directory:
    /// clusters of the same name on different engines keep their own.
    async fn relative_dir(engine: &HostEngine, cluster: &ClusterName) -> Result<PathBuf> {
        let id: String = engine
            .id()
            .await?
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        Ok(Path::new("engines").join(id).join("clusters").join(cluster.as_str()))
    }

    async fn at(engine: &HostEngine, cluster: &ClusterName) -> Result<Self> {
        let relative = Self::relative_dir(engine, cluster).await?;
        Ok(ClusterTls {
            dir: data_dir()?.join(&relative),
            relative,
        })
    }

    /// Where swarmlab kept it before it kept it per engine, for clusters
    /// made then.
    fn legacy(cluster: &ClusterName) -> Result<Self> {
        let relative = Path::new("clusters").join(cluster.as_str());
        Ok(ClusterTls {
            dir: data_dir()?.join(&relative),
            relative,
        })
    }

    fn is_complete(&self) -> bool {
        [CA_CERT, CLIENT_CERT, CLIENT_KEY]
            .iter()
            .all(|f| self.dir.join(f).is_file())
    }

    /// Makes fresh material for a new cluster, replacing any left over.
    /// The node engines' certificate is good for 127.0.0.1 (their published
    /// ports) and for every address of the cluster's `subnet` (reached
    /// directly where the host routes to it).
    pub(crate) async fn create(engine: &HostEngine, cluster: &ClusterName, subnet: &Ipv4Net) -> Result<Self> {
        let tls = Self::at(engine, cluster).await?;
        let _ = fs::remove_dir_all(&tls.dir);
        tls.write_new(cluster, subnet)?;
        Ok(tls)
    }

    /// Makes a new CA and new certificates beside this material, without
    /// touching it: they take its place when the renewal is committed (see
    /// [`Renewal::commit`]), once the nodes are ready for them.
    pub(crate) async fn stage_renewal(
        &self,
        engine: &HostEngine,
        cluster: &ClusterName,
        subnet: &Ipv4Net,
    ) -> Result<Renewal> {
        let target = Self::at(engine, cluster).await?;
        let staged = ClusterTls {
            dir: target.dir.with_extension("renewing"),
            relative: target.relative.clone(),
        };
        let _ = fs::remove_dir_all(&staged.dir);
        staged.write_new(cluster, subnet)?;
        Ok(Renewal {
            staged,
            target,
            current: self.clone(),
            committed: false,
        })
    }

    fn write_new(&self, cluster: &ClusterName, subnet: &Ipv4Net) -> Result<()> {
        let dir = &self.dir;
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        restrict(dir, 0o700)?;
        let now = SystemTime::now();
        let expires = now + VALIDITY;
        let material = generate(cluster, subnet, now, expires)
            .map_err(|e| Error::Other(format!("cannot make TLS certificates: {e}")))?;
        for (name, contents) in material {
            write_private(&dir.join(name), contents.as_bytes())?;
        }
        write_private(
            &dir.join(EXPIRES),
            humantime::format_rfc3339_seconds(expires).to_string().as_bytes(),
        )
    }

    /// Whether the certificates expire within 30 days of `now`, or were made
    /// before swarmlab said when they expire (and kept the CA key).
    pub(crate) fn needs_renewal(&self, now: SystemTime) -> bool {
        let expires = fs::read_to_string(self.dir.join(EXPIRES))
            .ok()
            .and_then(|text| humantime::parse_rfc3339_weak(text.trim()).ok());
        match expires {
            Some(expires) => expires < now + RENEW_BEFORE || self.dir.join(CA_KEY).exists(),
            None => true,
        }
    }

    /// The material of an existing cluster.
    pub async fn open(engine: &HostEngine, cluster: &ClusterName) -> Result<Self> {
        let tls = Self::at(engine, cluster).await?;
        if tls.is_complete() {
            return Ok(tls);
        }
        match Self::legacy(cluster)? {
            legacy if legacy.is_complete() => Ok(legacy),
            _ => Err(Error::TlsMissing {
                cluster: cluster.to_string(),
                dir: tls.dir.display().to_string(),
            }),
        }
    }

    /// Removes the material of a cluster being deleted: its own folder,
    /// else the shared one of earlier swarmlab versions, which the cluster
    /// was opened with.
    pub(crate) async fn remove(engine: &HostEngine, cluster: &ClusterName) -> Result<()> {
        let tls = Self::at(engine, cluster).await?;
        let tls = if tls.dir.exists() { tls } else { Self::legacy(cluster)? };
        remove_dir(&tls.dir)
    }

    /// Removes what `create` made for this engine's cluster, and nothing
    /// of a same-named cluster's of earlier versions: a create's rollback.
    pub(crate) async fn remove_made(engine: &HostEngine, cluster: &ClusterName) -> Result<()> {
        remove_dir(&Self::at(engine, cluster).await?.dir)
    }

    /// Whether a client identity for `cluster` is in the data directory,
    /// for any engine: asked before there is an engine to ask for its ID.
    pub fn installed(cluster: &ClusterName) -> Result<bool> {
        let engines = data_dir()?.join("engines");
        let Ok(folders) = fs::read_dir(engines) else {
            return Ok(false);
        };
        Ok(folders.flatten().any(|engine| {
            engine
                .path()
                .join("clusters")
                .join(cluster.as_str())
                .join(CLIENT_KEY)
                .is_file()
        }))
    }

    /// Where the material is, relative to the data directory.
    pub(crate) fn relative_path(&self) -> &Path {
        &self.relative
    }

    /// The client identity, as DOCKER_CERT_PATH wants it.
    pub(crate) fn client_dir(&self) -> &Path {
        &self.dir
    }

    /// The server identity that the node entrypoint reads on its standard
    /// input and writes to [`NODE_TLS_DIR`] before dockerd starts.
    pub(crate) fn node_bundle(&self) -> Result<Vec<u8>> {
        self.bundle([CA_CERT, SERVER_CERT, SERVER_KEY])
    }

    /// The client identity, for swarmlab running in a container (the port
    /// forwarder); see [`ClusterTls::install_bundle`].
    pub(crate) fn client_bundle(&self) -> Result<Vec<u8>> {
        self.bundle([CA_CERT, CLIENT_CERT, CLIENT_KEY])
    }

    /// Writes a client identity made by `ClusterTls::client_bundle` into
    /// the data directory, and opens it.
    pub async fn install_bundle(engine: &HostEngine, cluster: &ClusterName, bundle: &str) -> Result<Self> {
        let tls = Self::at(engine, cluster).await?;
        let blocks = split_pem(bundle);
        if blocks.len() != 3 {
            return Err(Error::invalid(format!(
                "expected a CA certificate, a certificate and a key (3 PEM blocks), got {} blocks",
                blocks.len()
            )));
        }
        fs::create_dir_all(&tls.dir).with_context(|| format!("cannot create {}", tls.dir.display()))?;
        for (file, block) in [CA_CERT, CLIENT_CERT, CLIENT_KEY].into_iter().zip(blocks) {
            write_private(&tls.dir.join(file), block.as_bytes())?;
        }
        Self::open(engine, cluster).await
    }

    fn read(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(file);
        fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    fn bundle(&self, files: [&str; 3]) -> Result<Vec<u8>> {
        let mut bundle = Vec::new();
        for file in files {
            let pem = self.read(file)?;
            bundle.extend_from_slice(pem.trim_ascii_end());
            bundle.push(b'\n');
        }
        Ok(bundle)
    }
}

/// New certificates waiting beside the ones in use; removed unless
/// committed.
pub(crate) struct Renewal {
    staged: ClusterTls,
    /// Where the cluster's material belongs (this engine's folder).
    target: ClusterTls,
    /// Where it is now (maybe the shared folder of earlier versions).
    current: ClusterTls,
    committed: bool,
}

impl Renewal {
    /// Puts the new material in place of the old, which goes, CA key and
    /// all; a cluster of the shared folder of earlier versions moves to its
    /// engine's.
    pub(crate) fn commit(mut self) -> Result<ClusterTls> {
        let old = self.target.dir.with_extension("old");
        let _ = fs::remove_dir_all(&old);
        if self.target.dir.exists() {
            fs::rename(&self.target.dir, &old)
                .with_context(|| format!("cannot move {} aside", self.target.dir.display()))?;
        }
        if let Some(parent) = self.target.dir.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::rename(&self.staged.dir, &self.target.dir)
            .with_context(|| format!("cannot put {} in place", self.target.dir.display()))?;
        self.committed = true;
        remove_dir(&old)?;
        if self.current.dir != self.target.dir {
            remove_dir(&self.current.dir)?;
        }
        Ok(self.target.clone())
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staged.dir);
        }
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// The PEM blocks of `text`, each from its BEGIN line to its END line.
fn split_pem(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    restrict(path, 0o600)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
