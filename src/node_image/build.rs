//! Building a node image from Debian's packages with debootstrap: no
//! registry, only a Debian mirror. The engine version is read off the
//! built root file system's own dockerd, not assumed from the suite.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::recipe::{BuildOptions, Builder, ENTRYPOINT_PATH, LastLines, PRUNED, Recipe, image_changes};
use super::releases;
use crate::engine::HostEngine;
use crate::error::{Context, Error, Result};
use crate::host::{TempDir, is_root, which};
use crate::host_images::{self, short_id};
use crate::node_choice::EngineVersion;
use crate::node_container::ENTRYPOINT_SCRIPT;
use crate::progress::Progress;

/// A node image just built.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: String,
    pub tags: Vec<String>,
    /// What its dockerd says it is.
    pub engine: EngineVersion,
}

/// Whether this machine can build node images: the reason when not.
fn cannot_build_here() -> Option<&'static str> {
    if !cfg!(target_os = "linux") {
        return Some("building a node image here needs Linux");
    }
    if which("debootstrap").is_none() {
        return Some("building a node image here needs debootstrap (apt-get install debootstrap)");
    }
    if !is_root() {
        return Some("building a node image here needs root (debootstrap creates device files)");
    }
    None
}

/// Builds a Docker-in-Docker node image with debootstrap, here or in a
/// container on the host engine, and imports it into the host engine.
/// `cancel` stops the build and removes what it has made so far.
pub async fn build(
    engine: &HostEngine,
    options: &BuildOptions,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<Built> {
    let here = match options.builder {
        Builder::Here => match cannot_build_here() {
            Some(reason) => {
                return Err(Error::Prerequisite(format!(
                    "{reason}; or build in a container on the engine (--builder container)"
                )));
            }
            None => true,
        },
        Builder::Container => false,
        Builder::Auto => cannot_build_here().is_none(),
    };
    let recipe = Recipe::new(options)?;
    let before = host_images::named_with_label(engine, super::IMAGE_LABEL).await;
    let (id, tags, actual) = if here {
        build_here(engine, &recipe, progress, cancel).await?
    } else {
        super::in_container::build(engine, &recipe, progress, cancel).await?
    };
    let step = &recipe.step;
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
    host_images::remove_left_nameless(engine, &before).await;
    progress.done(
        step,
        &format!("built {} (engine {actual}, {})", tags.join(", "), short_id(&id)),
    );
    Ok(Built {
        id,
        tags,
        engine: actual,
    })
}

/// debootstrap on this machine, into a temporary folder.
async fn build_here(
    engine: &HostEngine,
    recipe: &Recipe<'_>,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<(String, Vec<String>, EngineVersion)> {
    let (step, mirror) = (&recipe.step, &recipe.options.mirror);
    let rootfs = TempDir::new("swarmlab-rootfs")?;
    progress.step(step, &format!("debootstrap {} from {mirror}", recipe.release.suite));
    let args = [
        "--variant=minbase".to_string(),
        format!("--include={}", recipe.packages),
        recipe.release.suite.to_string(),
    ];
    debootstrap(rootfs.path(), &args, mirror, step, progress, cancel).await?;
    let actual = dockerd_version(rootfs.path()).await?;
    let tags = recipe.tags_for(&actual)?;
    progress.step(step, "trimming the root file system");
    for path in PRUNED {
        let path = rootfs.path().join(path);
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
    write_entrypoint(rootfs.path())?;
    if cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    progress.step(step, &format!("importing as {}", tags.join(", ")));
    // Short: let it finish rather than leave a half-imported image.
    let id = import(engine, rootfs.path(), &tags[0], &actual).await?;
    Ok((id, tags, actual))
}

/// Runs debootstrap with `args`, then the root file system and mirror.
/// `cancel` interrupts it as Ctrl-C would (SIGINT, not SIGKILL): it then
/// unmounts the /proc it mounted in the root file system, which the
/// temporary folder's removal would otherwise meet.
async fn debootstrap(
    rootfs: &Path,
    args: &[String],
    mirror: &str,
    step: &str,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<()> {
    let mut child = tokio::process::Command::new("debootstrap")
        .args(args)
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
        let mut last = LastLines::default();
        while let Ok(Some(line)) = lines.next_line().await {
            last.keep(line);
        }
        last
    });
    let mut lines = BufReader::new(stdout).lines();
    let shown = async {
        while let Ok(Some(line)) = lines.next_line().await {
            progress.step(step, &format!("debootstrap: {}", line.trim_start_matches("I: ")));
        }
    };
    tokio::select! {
        () = shown => {}
        () = cancel.cancelled() => {
            #[cfg(unix)]
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child's pid; no memory involved.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
            }
            let _ = child.wait().await;
            return Err(Error::Interrupted);
        }
    }
    let status = child.wait().await.context("debootstrap did not finish")?;
    if !status.success() {
        let said = errors.await.unwrap_or_default();
        return Err(Error::Other(format!("debootstrap failed ({status}){}", said.tail())));
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
    let changes = image_changes(version);
    let id = host_images::import_rootfs(engine, body, tag, changes).await?;
    let status = tar.wait().await.context("tar did not finish")?;
    if !status.success() {
        return Err(Error::Other(format!("tar of the root file system failed ({status})")));
    }
    Ok(id)
}
