//! Building a node image from Debian's packages with debootstrap: no
//! registry, only a Debian mirror. The engine version is read off the
//! built root file system's own dockerd, not assumed from the suite.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::releases;
use super::{ENGINE_LABEL, IMAGE_LABEL, REPOSITORY};
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::host::{TempDir, is_root, which};
use crate::host_images::{self, short_id};
use crate::node_choice::EngineVersion;
use crate::node_container::ENTRYPOINT_SCRIPT;
use crate::progress::Progress;

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

/// Options of [`build`].
pub struct BuildOptions {
    /// The engine asked for; None builds the newest the builder knows.
    pub engine: Option<EngineVersion>,
    /// The tag; None tags `swarmlab/node:MAJOR.MINOR`, and `latest` too
    /// when no engine was asked for (the newest becomes the default).
    pub tag: Option<String>,
    pub mirror: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            engine: None,
            tag: None,
            mirror: std::env::var("SWARMLAB_DEBIAN_MIRROR")
                .unwrap_or_else(|_| "http://deb.debian.org/debian".to_string()),
        }
    }
}

/// A node image just built.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: String,
    pub tags: Vec<String>,
    /// What its dockerd says it is.
    pub engine: EngineVersion,
}

/// Whether this machine can build node images: the reason when not.
pub(crate) fn cannot_build() -> Option<&'static str> {
    if which("debootstrap").is_none() {
        return Some("building a node image needs debootstrap: install it (apt-get install debootstrap) and try again");
    }
    if !is_root() {
        return Some(
            "building a node image needs root (debootstrap creates device files): run it as root or with sudo",
        );
    }
    None
}

/// Builds a Docker-in-Docker node image with debootstrap and imports it
/// into the host engine.
pub async fn build(engine: &HostEngine, options: &BuildOptions, progress: &dyn Progress) -> Result<Built> {
    if let Some(reason) = cannot_build() {
        return Err(Error::Prerequisite(reason.into()));
    }
    let release = releases::release_for(options.engine.as_ref())?;
    let rootfs = TempDir::new("swarmlab-rootfs")?;
    let step = format!("engine {}", release.engine);
    let mut packages = PACKAGES.to_string();
    if release.separate_cli {
        packages.push_str(",docker-cli");
    }
    progress.step(&step, &format!("debootstrap {} from {}", release.suite, options.mirror));
    debootstrap(
        rootfs.path(),
        release.suite,
        &packages,
        &options.mirror,
        &step,
        progress,
    )
    .await?;

    let actual = dockerd_version(rootfs.path()).await?;
    let asked = options
        .engine
        .clone()
        .unwrap_or_else(|| EngineVersion::parse(release.engine).expect("valid table"));
    if !asked.is_met_by(&actual) {
        return Err(Error::Other(format!(
            "Debian's {} now carries Docker engine {actual}, not {asked}: build `--engine {}` instead, or pass an image of your own with --image",
            release.suite,
            actual.major_minor()
        )));
    }

    progress.step(&step, "trimming the root file system");
    for path in PRUNED {
        let path = rootfs.path().join(path);
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
    write_entrypoint(rootfs.path())?;

    let tags = match &options.tag {
        Some(tag) => vec![tag.clone()],
        None if options.engine.is_none() => {
            vec![
                format!("{REPOSITORY}:{}", actual.major_minor()),
                format!("{REPOSITORY}:latest"),
            ]
        }
        None => vec![format!("{REPOSITORY}:{}", actual.major_minor())],
    };
    progress.step(&step, &format!("importing as {}", tags.join(", ")));
    let id = import(engine, rootfs.path(), &tags[0], &actual).await?;
    for tag in &tags[1..] {
        let (repo, version) = host_images::split_reference(tag);
        let options = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(version)
            .build();
        engine
            .docker
            .tag_image(&id, Some(options))
            .await
            .with_context(|| format!("cannot tag the node image as {tag}"))?;
    }
    progress.done(
        &step,
        &format!("built {} (engine {actual}, {})", tags.join(", "), short_id(&id)),
    );
    Ok(Built {
        id,
        tags,
        engine: actual,
    })
}

async fn debootstrap(
    rootfs: &Path,
    suite: &str,
    packages: &str,
    mirror: &str,
    step: &str,
    progress: &dyn Progress,
) -> Result<()> {
    let mut child = tokio::process::Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={packages}"), suite])
        .arg(rootfs)
        .arg(mirror)
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
        progress.step(step, &format!("debootstrap: {}", line.trim_start_matches("I: ")));
    }
    let status = child.wait().await.context("debootstrap did not finish")?;
    if !status.success() {
        let tail = errors.await.unwrap_or_default();
        return Err(Error::Other(format!("debootstrap failed ({status}): {tail}")));
    }
    Ok(())
}

/// What the root file system's dockerd says its version is.
async fn dockerd_version(rootfs: &Path) -> Result<EngineVersion> {
    let output = tokio::process::Command::new("chroot")
        .arg(rootfs)
        .args(["/usr/sbin/dockerd", "--version"])
        .output()
        .await
        .context("cannot run the new image's dockerd --version")?;
    let said = String::from_utf8_lossy(&output.stdout);
    releases::from_version_line(&said).ok_or_else(|| {
        Error::Other(format!(
            "the new image's dockerd does not say its version ({}{})",
            said.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })
}

fn write_entrypoint(rootfs: &Path) -> Result<()> {
    let path = rootfs.join(ENTRYPOINT_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().expect("has a parent")).context("cannot write the node entrypoint")?;
    std::fs::write(&path, ENTRYPOINT_SCRIPT).context("cannot write the node entrypoint")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .context("cannot write the node entrypoint")?;
    }
    Ok(())
}

/// Streams the root file system, as tar archives it (device files, owners,
/// hard links intact), into the engine's image import.
async fn import(engine: &HostEngine, rootfs: &Path, tag: &str, version: &EngineVersion) -> Result<String> {
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
        format!("LABEL {IMAGE_LABEL}=debian"),
        format!("LABEL {ENGINE_LABEL}={version}"),
    ];
    let id = host_images::import_rootfs(engine, body, tag, changes).await?;
    let status = tar.wait().await.context("tar did not finish")?;
    if !status.success() {
        return Err(Error::Other(format!("tar of the root file system failed ({status})")));
    }
    Ok(id)
}
