//! The image node containers run: choosing one, and building swarmlab's own
//! from Debian's packages without any registry.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::host::{TempDir, is_root, which};
use crate::host_images::{self, is_present, pull, short_id};
use crate::node_container::ENTRYPOINT_SCRIPT;
use crate::progress::Progress;

pub const DEFAULT_TAG: &str = "swarmlab/node:latest";
pub(crate) const IMAGE_ENV: &str = "SWARMLAB_NODE_IMAGE";
const OFFICIAL_DIND: &str = "docker:dind";
const ENTRYPOINT_PATH: &str = "/usr/local/bin/swarmlab-node-entrypoint";
const PACKAGES: &str = "docker.io,iptables,iproute2,procps,ca-certificates";
/// Not needed in a node: documentation, apt's caches, libnetwork's debug tools.
const PRUNED: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "usr/bin/dnet",
    "usr/sbin/ovrouter",
];

/// Picks the node image: `explicit` (--image) > SWARMLAB_NODE_IMAGE >
/// swarmlab/node:latest when present > docker:dind, pulled.
pub(crate) async fn resolve(engine: &HostEngine, explicit: Option<&str>, progress: &dyn Progress) -> Result<String> {
    let chosen = explicit
        .map(str::to_string)
        .or_else(|| std::env::var(IMAGE_ENV).ok().filter(|s| !s.is_empty()));
    if let Some(image) = chosen {
        if is_present(engine, &image).await? {
            return Ok(image);
        }
        progress.note(&format!("node image {image} is not on the host engine; pulling it"));
        return match pull(engine, &image).await {
            Ok(()) => Ok(image),
            Err(reason) => Err(Error::NodeImageMissing(format!(
                "node image {image} is not on the host engine and could not be pulled ({reason}): build swarmlab's own with `swarmlab node-image build` or choose another --image"
            ))),
        };
    }
    if is_present(engine, DEFAULT_TAG).await? {
        return Ok(DEFAULT_TAG.to_string());
    }
    progress.note(&format!("{DEFAULT_TAG} is not built; pulling {OFFICIAL_DIND} instead"));
    match pull(engine, OFFICIAL_DIND).await {
        Ok(()) => Ok(OFFICIAL_DIND.to_string()),
        Err(reason) => Err(Error::NodeImageMissing(format!(
            "no node image: {DEFAULT_TAG} is not built and {OFFICIAL_DIND} could not be pulled ({reason}); build one offline with `swarmlab node-image build`, or make {OFFICIAL_DIND} pullable"
        ))),
    }
}

/// Options of [`build`].
pub struct BuildOptions {
    pub tag: String,
    pub suite: String,
    pub mirror: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            tag: DEFAULT_TAG.to_string(),
            suite: "bookworm".to_string(),
            mirror: std::env::var("SWARMLAB_DEBIAN_MIRROR")
                .unwrap_or_else(|_| "http://deb.debian.org/debian".to_string()),
        }
    }
}

/// Builds a Docker-in-Docker node image with debootstrap and imports it
/// into the host engine. Returns the image ID.
pub async fn build(engine: &HostEngine, options: &BuildOptions, progress: &dyn Progress) -> Result<String> {
    if which("debootstrap").is_none() {
        return Err(Error::Prerequisite(
            "building the node image needs debootstrap: install it (apt-get install debootstrap) and try again".into(),
        ));
    }
    if !is_root() {
        return Err(Error::Prerequisite(
            "building the node image needs root (debootstrap creates device files): run it as root or with sudo".into(),
        ));
    }
    let rootfs = TempDir::new("swarmlab-rootfs")?;
    const STEP: &str = "image";

    progress.step(STEP, &format!("debootstrap {} from {}", options.suite, options.mirror));
    let mut child = tokio::process::Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), &options.suite])
        .arg(rootfs.path())
        .arg(&options.mirror)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run debootstrap")?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut last = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            last.push(line);
            if last.len() > 5 {
                last.remove(0);
            }
        }
        last.join(" / ")
    });
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        progress.step(STEP, &format!("debootstrap: {}", line.trim_start_matches("I: ")));
    }
    let status = child.wait().await.context("debootstrap did not finish")?;
    if !status.success() {
        let tail = errors.await.unwrap_or_default();
        return Err(Error::Other(format!("debootstrap failed ({status}): {tail}")));
    }

    progress.step(STEP, "trimming the root file system");
    for path in PRUNED {
        let path = rootfs.path().join(path);
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
    write_entrypoint(rootfs.path())?;

    progress.step(STEP, &format!("importing as {}", options.tag));
    let id = import(engine, rootfs.path(), &options.tag).await?;
    progress.done(STEP, &format!("built {} ({})", options.tag, short_id(&id)));
    Ok(id)
}

fn write_entrypoint(rootfs: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = rootfs.join(ENTRYPOINT_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().expect("has a parent")).context("cannot write the node entrypoint")?;
    std::fs::write(&path, ENTRYPOINT_SCRIPT).context("cannot write the node entrypoint")?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).context("cannot write the node entrypoint")
}

/// Streams the root file system, as tar archives it (device files, owners,
/// hard links intact), into the engine's image import.
async fn import(engine: &HostEngine, rootfs: &Path, tag: &str) -> Result<String> {
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run tar")?;
    let body = tokio_util::io::ReaderStream::new(tar.stdout.take().expect("piped"));
    let changes = vec![
        format!("ENTRYPOINT [\"{ENTRYPOINT_PATH}\"]"),
        "VOLUME /var/lib/docker".to_string(),
        "LABEL io.swarmlab.node-image=debian".to_string(),
    ];
    let id = host_images::import_rootfs(engine, body, tag, changes).await?;
    let status = tar.wait().await.context("tar did not finish")?;
    if !status.success() {
        return Err(Error::Other(format!("tar of the root file system failed ({status})")));
    }
    Ok(id)
}
