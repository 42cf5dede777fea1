//! Building a node image in a container on the host engine: the same
//! debootstrap, run next to the engine, so that a client without root,
//! debootstrap or Linux (Docker Desktop on macOS or Windows, a remote
//! engine) builds one too. The container writes, on its stdout, a line
//! with the version of the dockerd it installed and then the root file
//! system as a tar archive, which goes straight into the image import;
//! its stderr carries debootstrap's progress.

use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::recipe::{ENTRYPOINT_PATH, LastLines, PRUNED, Recipe, image_changes};
use super::{REPOSITORY, releases};
use crate::engine::HostEngine;
use crate::error::{Error, Result};
use crate::host_images;
use crate::node_choice::EngineVersion;
use crate::node_container::ENTRYPOINT_SCRIPT;
use crate::oneshot::OneShot;
use crate::progress::Progress;

/// The `io.swarmlab.role` of the builder container: it belongs to no cluster.
const ROLE: &str = "node-image-builder";
/// A Debian image with apt (or with debootstrap) to build in.
const BUILDER_IMAGE_VAR: &str = "SWARMLAB_BUILDER_IMAGE";
const DEFAULT_BUILDER: &str = "debian:trixie-slim";
/// The first line on stdout, before the archive: this and what the built
/// dockerd's `--version` says.
const VERSION_MARK: &str = "swarmlab-engine-version: ";
/// Everything but the version line and the archive goes to stderr (but
/// dpkg's line per package: apt's errors are on stderr).
/// apt fetches from the mirror asked for (a site may reach no other), with
/// the builder image's own release; Valid-Until is not checked, since a
/// snapshot mirror's sid has expired and debootstrap does not check it
/// either. The version is read into a variable first so that a dockerd
/// that cannot run stops the script (`set -e` spares a command
/// substitution inside `echo`).
const SCRIPT: &str = r#"set -e
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap in the builder" >&2
  if ! grep -rqsF "$MIRROR" /etc/apt/sources.list /etc/apt/sources.list.d; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-$SUITE}")
    find /etc/apt/sources.list.d -type f -delete
    echo "deb $MIRROR $codename main" >/etc/apt/sources.list
  fi
  apt-get -o Acquire::Check-Valid-Until=false update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" /rootfs "$MIRROR" >&2
cd /rootfs
set -f
rm -rf $PRUNED
set +f
mkdir -p "$(dirname ".$ENTRYPOINT_PATH")"
printf '%s' "$ENTRYPOINT" >".$ENTRYPOINT_PATH"
chmod 755 ".$ENTRYPOINT_PATH"
version=$(chroot /rootfs /usr/sbin/dockerd --version)
echo "swarmlab-engine-version: $version"
exec tar --numeric-owner -c -f - .
"#;

/// Builds `recipe` in a container; the image's ID, tags and engine.
/// `cancel` stops and removes the builder.
pub(super) async fn build(
    engine: &HostEngine,
    recipe: &Recipe<'_>,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<(String, Vec<String>, EngineVersion)> {
    let image = builder_image(engine).await?;
    progress.step(
        &recipe.step,
        &format!(
            "debootstrap {} from {} in a container of {image}",
            recipe.release.suite, recipe.options.mirror
        ),
    );
    let mut env = vec![
        format!("PACKAGES={}", recipe.packages),
        format!("SUITE={}", recipe.release.suite),
        format!("MIRROR={}", recipe.options.mirror),
        format!("PRUNED={}", PRUNED.join(" ")),
        format!("ENTRYPOINT_PATH={ENTRYPOINT_PATH}"),
        format!("ENTRYPOINT={ENTRYPOINT_SCRIPT}"),
    ];
    // As `docker run` would give it: apt and debootstrap fetch through them.
    env.extend(engine.proxy_env());
    let config = ContainerCreateBody {
        image: Some(image),
        entrypoint: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        cmd: Some(vec![]),
        user: Some("root".into()),
        env: Some(env),
        ..Default::default()
    };
    let mut builder = OneShot::start(engine, ROLE, "the node image builder", config).await?;
    let built = tokio::select! {
        built = run(engine, recipe, &mut builder, progress) => built,
        () = cancel.cancelled() => Err(Error::Interrupted),
    };
    if built.is_err() {
        // Unread, it would block on its output and never end.
        builder.abandon().await;
    }
    built
}

/// Why the archive stopped flowing before the builder ended well.
enum Stopped {
    /// The import ended first: its own error says why.
    Import,
    Failed(Error),
}

/// Reads the builder's output: the version line, then the archive, which
/// is streamed into the image import.
async fn run(
    engine: &HostEngine,
    recipe: &Recipe<'_>,
    builder: &mut OneShot,
    progress: &dyn Progress,
) -> Result<(String, Vec<String>, EngineVersion)> {
    let step = &recipe.step;
    let mut said = Said::default();
    // stdout opens with the version line, then the archive. (Not on
    // stderr: the engine copies the two streams apart, in no set order.)
    let mut header = Vec::new();
    let (actual, rest) = loop {
        match builder.next().await {
            Some(Ok(LogOutput::StdErr { message })) => said.take(&message, step, progress),
            Some(Ok(LogOutput::StdOut { message })) => {
                header.extend_from_slice(&message);
                if let Some(end) = header.iter().position(|&b| b == b'\n') {
                    let rest = bytes::Bytes::copy_from_slice(&header[end + 1..]);
                    break (version_of_header(&header[..end]), rest);
                }
                if header.len() > 4096 {
                    break (version_of_header(&header), bytes::Bytes::new());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(said.failure()),
        }
    };
    let actual = actual.map_err(|what| {
        Error::Other(format!(
            "the node image builder did not say the built engine's version (it said {what:?}){}",
            said.tail()
        ))
    })?;
    let tags = recipe.tags_for(&actual)?;

    progress.step(step, &format!("importing as {}", tags.join(", ")));
    // The archive flows from the container's stdout into the import; the
    // import is told it failed when the builder did not end well.
    let (archive, chunks) = mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
    let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    let import = host_images::import_rootfs(engine, body, &tags[0], image_changes(&actual));
    let pump = async {
        let mut stopped = None;
        if !rest.is_empty() && archive.send(Ok(rest)).await.is_err() {
            stopped = Some(Stopped::Import);
        }
        while stopped.is_none() {
            match builder.next().await {
                Some(Ok(LogOutput::StdOut { message })) => {
                    if archive.send(Ok(message)).await.is_err() {
                        stopped = Some(Stopped::Import);
                    }
                }
                Some(Ok(LogOutput::StdErr { message })) => said.take(&message, step, progress),
                Some(Ok(_)) => {}
                Some(Err(e)) => stopped = Some(Stopped::Failed(e)),
                None => break,
            }
        }
        if stopped.is_none() {
            // Nothing else tells a whole archive from one cut short.
            let failed = |why: String| Some(Stopped::Failed(Error::Other(format!("{why}{}", said.tail()))));
            stopped = match builder.exit_code().await {
                Ok(Some(0)) => None,
                Ok(Some(code)) => failed(format!("the node image builder failed (exit code {code})")),
                Ok(None) => failed("the node image builder's exit code could not be learned".into()),
                Err(e) => Some(Stopped::Failed(e)),
            };
        }
        if stopped.is_some() {
            let _ = archive
                .send(Err(std::io::Error::other("the node image builder did not end well")))
                .await;
        }
        drop(archive);
        stopped
    };
    let (imported, stopped) = tokio::join!(import, pump);
    let (taken, error) = match (imported, stopped) {
        (Ok(id), None) => return Ok((id, tags, actual)),
        (Err(e), None | Some(Stopped::Import)) => return Err(e),
        (imported, Some(Stopped::Failed(e))) => (imported.is_ok(), e),
        (Ok(_), Some(Stopped::Import)) => (
            true,
            Error::Other("the engine ended the image import before the archive ended".into()),
        ),
    };
    // The engine may have taken the whole archive before the builder's
    // exit code said it was not to be trusted.
    if taken {
        let _ = engine
            .docker
            .remove_image(&tags[0], None::<bollard::query_parameters::RemoveImageOptions>, None)
            .await;
    }
    Err(error)
}

/// The image to build in: the user's, else a swarmlab node image already
/// on the engine (Debian, with apt: nothing to pull), else Debian's own.
/// Each for the engine's machine: debootstrap builds for the machine of
/// the image it runs in.
async fn builder_image(engine: &HostEngine) -> Result<String> {
    let machine = engine.facts().await?.architecture;
    if let Some(image) = std::env::var(BUILDER_IMAGE_VAR).ok().filter(|s| !s.is_empty()) {
        present_or_pulled(engine, &image, &format!("the image in {BUILDER_IMAGE_VAR}")).await?;
        if let Some(other) = for_another_machine(engine, &image, machine).await {
            return Err(Error::Prerequisite(format!(
                "the image in {BUILDER_IMAGE_VAR}, {image}, is for {other} and the engine runs on {machine}: name one for the engine's machine"
            )));
        }
        return Ok(image);
    }
    // Only swarmlab's own: an image made from one may lack apt.
    let own = format!("{REPOSITORY}:");
    let nodes = super::list(engine).await?;
    for tag in nodes
        .iter()
        .flat_map(|node| &node.tags)
        .filter(|tag| tag.starts_with(&own))
    {
        if for_another_machine(engine, tag, machine).await.is_none() {
            return Ok(tag.clone());
        }
    }
    present_or_pulled(engine, DEFAULT_BUILDER, "the builder image").await?;
    if let Some(other) = for_another_machine(engine, DEFAULT_BUILDER, machine).await {
        // A pull fetches the engine's own machine's.
        let pulled = host_images::pull(engine, DEFAULT_BUILDER).await;
        if pulled.is_err() || for_another_machine(engine, DEFAULT_BUILDER, machine).await.is_some() {
            return Err(Error::Prerequisite(format!(
                "the builder image {DEFAULT_BUILDER} on the engine is for {other} and the engine runs on {machine}; one for {machine} could not be pulled: make it pullable, or name a Debian image with apt in {BUILDER_IMAGE_VAR}"
            )));
        }
    }
    Ok(DEFAULT_BUILDER.to_string())
}

/// The machine `image` is for, when it is known and not the engine's
/// (`machine` as `docker info` names it).
async fn for_another_machine(engine: &HostEngine, image: &str, machine: &str) -> Option<String> {
    let wanted = match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        _ => return None,
    };
    let inspected = engine.docker.inspect_image(image).await.ok()?;
    inspected.architecture.filter(|arch| arch != wanted)
}

async fn present_or_pulled(engine: &HostEngine, image: &str, what: &str) -> Result<()> {
    host_images::present_or_pulled(engine, image).await.map_err(|reason| {
        Error::Prerequisite(format!(
            "{what}, {image}, is not on the engine and could not be pulled ({reason}): make it pullable, or name a Debian image with apt in {BUILDER_IMAGE_VAR}"
        ))
    })
}

/// What the builder says on stderr: progress lines, the last few kept for
/// an error.
#[derive(Default)]
struct Said {
    partial: Vec<u8>,
    last: LastLines,
}

impl Said {
    /// Takes a piece of stderr: whole lines are shown and the last kept.
    fn take(&mut self, bytes: &[u8], step: &str, progress: &dyn Progress) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // debootstrap's own lines ("I: ...") say whose they are.
            let line = match line.strip_prefix("I: ") {
                Some(info) => {
                    progress.step(step, &format!("debootstrap: {info}"));
                    info
                }
                None => {
                    progress.step(step, line);
                    line
                }
            };
            self.last.keep(line.to_string());
        }
    }

    /// Its last lines, for an error message.
    fn tail(&self) -> String {
        self.last.tail()
    }

    /// The builder ended before its archive began.
    fn failure(&self) -> Error {
        Error::Other(format!(
            "the node image builder stopped before the root file system was made{}",
            self.tail()
        ))
    }
}

/// The built engine's version from the line before the archive; else what
/// the line said, shortened.
fn version_of_header(line: &[u8]) -> std::result::Result<EngineVersion, String> {
    let line = String::from_utf8_lossy(line);
    line.strip_prefix(VERSION_MARK)
        .and_then(releases::from_version_line)
        .ok_or_else(|| crate::error::one_line(line.chars().take(200).collect::<String>().trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl Progress for Quiet {
        fn step(&self, _: &str, _: &str) {}
        fn done(&self, _: &str, _: &str) {}
        fn note(&self, _: &str) {}
    }

    #[test]
    fn the_script_says_the_version_on_stdout_with_the_mark_that_is_looked_for() {
        assert!(SCRIPT.contains(&format!("echo \"{VERSION_MARK}$version\"\n")));
    }

    #[test]
    fn the_header_gives_the_version_and_anything_else_is_an_error() {
        let version = version_of_header(b"swarmlab-engine-version: Docker version 26.1.5+dfsg1, build 411e817");
        assert_eq!(version.unwrap(), EngineVersion::parse("26.1.5").unwrap());
        let wrong = version_of_header(b"./\0\0\0 ustar").unwrap_err();
        assert!(wrong.starts_with("./"), "{wrong}");
    }

    #[test]
    fn stderr_lines_are_shown_across_pieces_and_the_last_kept() {
        let mut said = Said::default();
        said.take(b"I: Retrieving InRelease\nI: Configur", "s", &Quiet);
        said.take(b"ing docker.io...\n", "s", &Quiet);
        assert_eq!(said.tail(), ": Retrieving InRelease / Configuring docker.io...");
        let mut said = Said::default();
        said.take(b"E: Failed getting release file\n", "s", &Quiet);
        assert!(
            said.failure()
                .to_string()
                .contains("stopped before the root file system was made: E: Failed")
        );
    }
}
