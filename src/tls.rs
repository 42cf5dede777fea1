//! TLS material of a cluster: a CA, one server identity that every node's
//! engine presents, and one client identity for swarmlab and the docker CLI.
//!
//! The node engines listen on TCP only with `--tlsverify`: besides keeping
//! the API to its owner, dockerd deliberately stalls its start-up by a
//! second when it serves plain TCP, and a node's start-up is what cluster
//! creation waits for.
//!
//! The files live under the user's data directory, laid out as the docker
//! CLI expects for DOCKER_CERT_PATH, and go away with the cluster.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::addressing::Ipv4Net;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::naming::ClusterName;

/// Where the node entrypoint writes the engine's identity (see assets/node-entrypoint.sh).
pub const NODE_TLS_DIR: &str = "/etc/swarmlab/tls";

/// How a TLS identity travels into a container: CA, certificate, key.
const ENV_VARS: [&str; 3] = ["SWARMLAB_TLS_CA", "SWARMLAB_TLS_CERT", "SWARMLAB_TLS_KEY"];
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const CLIENT_CERT: &str = "cert.pem";
const CLIENT_KEY: &str = "key.pem";
const SERVER_CERT: &str = "server-cert.pem";
const SERVER_KEY: &str = "server-key.pem";

/// swarmlab's data directory: SWARMLAB_HOME, else $XDG_DATA_HOME/swarmlab,
/// else ~/.local/share/swarmlab.
pub fn data_dir() -> Result<PathBuf> {
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
    pub async fn create(engine: &HostEngine, cluster: &ClusterName, subnet: &Ipv4Net) -> Result<Self> {
        let tls = Self::at(engine, cluster).await?;
        let dir = tls.dir.clone();
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        restrict(&dir, 0o700)?;

        let material =
            generate(cluster, subnet).map_err(|e| Error::Other(format!("cannot make TLS certificates: {e}")))?;
        for (name, contents) in material {
            let path = dir.join(name);
            fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
            if name.contains("key") {
                restrict(&path, 0o600)?;
            }
        }
        Ok(tls)
    }

    /// The material of an existing cluster.
    pub async fn open(engine: &HostEngine, cluster: &ClusterName) -> Result<Self> {
        let tls = Self::at(engine, cluster).await?;
        if tls.is_complete() {
            return Ok(tls);
        }
        match Self::legacy(cluster)? {
            legacy if legacy.is_complete() => Ok(legacy),
            _ => Err(Error::Other(format!(
                "the TLS certificates of cluster \"{cluster}\" are missing from {}: swarmlab cannot reach its nodes; delete the cluster and create it again",
                tls.dir.display()
            ))),
        }
    }

    /// Removes the material of a cluster, if any.
    pub async fn remove(engine: &HostEngine, cluster: &ClusterName) -> Result<()> {
        let tls = Self::at(engine, cluster).await?;
        let tls = if tls.dir.exists() { tls } else { Self::legacy(cluster)? };
        match fs::remove_dir_all(&tls.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", tls.dir.display()))
            }
            _ => Ok(()),
        }
    }

    /// Where the material is, relative to the data directory.
    pub fn relative_path(&self) -> &Path {
        &self.relative
    }

    /// The client identity, as DOCKER_CERT_PATH wants it.
    pub fn client_dir(&self) -> &Path {
        &self.dir
    }

    /// The server identity as environment variables, which the node
    /// entrypoint writes to [`NODE_TLS_DIR`] before dockerd starts.
    pub fn node_env(&self) -> Result<Vec<String>> {
        self.env([CA_CERT, SERVER_CERT, SERVER_KEY])
    }

    /// The client identity as environment variables, for swarmlab running
    /// in a container (the port forwarder); see [`ClusterTls::install_from_env`].
    pub fn client_env(&self) -> Result<Vec<String>> {
        self.env([CA_CERT, CLIENT_CERT, CLIENT_KEY])
    }

    /// Writes the client identity that [`ClusterTls::client_env`] passed
    /// into the data directory, and opens it.
    pub async fn install_from_env(engine: &HostEngine, cluster: &ClusterName) -> Result<Self> {
        let tls = Self::at(engine, cluster).await?;
        let dir = &tls.dir;
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (var, file) in ENV_VARS.into_iter().zip([CA_CERT, CLIENT_CERT, CLIENT_KEY]) {
            let pem = std::env::var(var).map_err(|_| Error::invalid(format!("{var} is not set")))?;
            fs::write(dir.join(file), format!("{pem}\n")).with_context(|| format!("cannot write {file}"))?;
        }
        Self::open(engine, cluster).await
    }

    fn env(&self, files: [&str; 3]) -> Result<Vec<String>> {
        ENV_VARS
            .into_iter()
            .zip(files)
            .map(|(var, file)| {
                let path = self.dir.join(file);
                let pem = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                Ok(format!("{var}={}", pem.trim_end()))
            })
            .collect()
    }
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

fn generate(cluster: &ClusterName, subnet: &Ipv4Net) -> Result<Vec<(&'static str, String)>, rcgen::Error> {
    let named = |what: &str| {
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, format!("swarmlab {cluster} {what}"));
        name
    };

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = named("CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["localhost".to_string()])?;
    server_params.distinguished_name = named("node");
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    server_params.subject_alt_names.extend(
        subnet
            .node_addresses()
            .map(|address| SanType::IpAddress(address.into())),
    );
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client_params = CertificateParams::default();
    client_params.distinguished_name = named("client");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer)?;

    Ok(vec![
        (CA_CERT, ca_cert.pem()),
        (CA_KEY, ca_key.serialize_pem()),
        (SERVER_CERT, server_cert.pem()),
        (SERVER_KEY, server_key.serialize_pem()),
        (CLIENT_CERT, client_cert.pem()),
        (CLIENT_KEY, client_key.serialize_pem()),
    ])
}
