//! Building a node image in a container on the host engine: the same
//! debootstrap, run next to the engine, so that a client without root,
//! debootstrap or Linux (Docker Desktop on macOS or Windows, a remote
//! engine) builds one too. The container writes the root file system as a
//! tar archive to its stdout, which goes straight into the image import;
//! its stderr carries debootstrap's progress and, before the archive
//! begins, the version of the dockerd it installed.

use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use tokio::sync::mpsc;

use super::recipe::{ENTRYPOINT_PATH, PRUNED, Recipe, image_changes};
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
/// Why the builder was stopped when the import ended first: the import's
/// own error says more.
const IMPORT_STOPPED: &str = "the import stopped";
/// The first line on stdout, before the archive: this and what the built
/// dockerd's `--version` says.
const VERSION_MARK: &str = "swarmlab-engine-version: ";
/// Everything but the version line and the archive goes to stderr.
/// Valid-Until is not checked: a snapshot mirror's sid has expired, and
/// debootstrap does not check it either.
const SCRIPT: &str = r#"set -e
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap in the builder" >&2
  apt-get -o Acquire::Check-Valid-Until=false update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" /rootfs "$MIRROR" >&2
cd /rootfs
rm -rf $PRUNED
mkdir -p "$(dirname ".$ENTRYPOINT_PATH")"
printf '%s' "$ENTRYPOINT" >".$ENTRYPOINT_PATH"
chmod 755 ".$ENTRYPOINT_PATH"
echo "swarmlab-engine-version: $(chroot /rootfs /usr/sbin/dockerd --version)"
exec tar --numeric-owner -c .
"#;

/// Builds `recipe` in a container; the image's ID, tags and engine.
pub(super) async fn build(
    engine: &HostEngine,
    recipe: &Recipe<'_>,
    progress: &dyn Progress,
) -> Result<(String, Vec<String>, EngineVersion)> {
    let step = &recipe.step;
    let image = builder_image(engine).await?;
    progress.step(
        step,
        &format!(
            "debootstrap {} from {} in a container of {image}",
            recipe.release.suite, recipe.options.mirror
        ),
    );
    let config = ContainerCreateBody {
        image: Some(image),
        entrypoint: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        cmd: Some(vec![]),
        user: Some("root".into()),
        env: Some(vec![
            format!("PACKAGES={}", recipe.packages),
            format!("SUITE={}", recipe.release.suite),
            format!("MIRROR={}", recipe.options.mirror),
            format!("PRUNED={}", PRUNED.join(" ")),
            format!("ENTRYPOINT_PATH={ENTRYPOINT_PATH}"),
            format!("ENTRYPOINT={ENTRYPOINT_SCRIPT}"),
        ]),
        ..Default::default()
    };
    let mut builder = OneShot::start(engine, ROLE, "the node image builder", config).await?;
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
            Some(Err(e)) => {
                builder.abandon(engine).await;
                return Err(e);
            }
            None => break (Err(said.failure()), bytes::Bytes::new()),
        }
    };
    let checked = actual.and_then(|actual| Ok((recipe.tags_for(&actual)?, actual)));
    let (tags, actual) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            builder.abandon(engine).await;
            return Err(e);
        }
    };

    progress.step(step, &format!("importing as {}", tags.join(", ")));
    // The archive flows from the container's stdout into the import; the
    // import is told it failed when the builder did not end well.
    let (archive, chunks) = mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
    let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    let import = host_images::import_rootfs(engine, body, &tags[0], image_changes(&actual));
    let pump = async {
        let mut failed = None;
        if !rest.is_empty() && archive.send(Ok(rest)).await.is_err() {
            failed = Some(IMPORT_STOPPED.to_string());
        }
        while failed.is_none() {
            match builder.next().await {
                Some(Ok(LogOutput::StdOut { message })) => {
                    if archive.send(Ok(message)).await.is_err() {
                        failed = Some(IMPORT_STOPPED.to_string());
                    }
                }
                Some(Ok(LogOutput::StdErr { message })) => said.take(&message, step, progress),
                Some(Ok(_)) => {}
                Some(Err(e)) => failed = Some(e.to_string()),
                None => break,
            }
        }
        let failed = match failed {
            // Unread, it would block on its output and never end.
            Some(reason) => {
                builder.abandon(engine).await;
                Some(reason)
            }
            None => match builder.exit_code().await {
                Ok(Some(0) | None) => None,
                Ok(Some(code)) => Some(format!("exit code {code}")),
                Err(e) => Some(e.to_string()),
            },
        };
        if let Some(reason) = &failed {
            let _ = archive.send(Err(std::io::Error::other(reason.clone()))).await;
        }
        drop(archive);
        failed
    };
    let (imported, failed) = tokio::join!(import, pump);
    match (imported, failed) {
        (Ok(id), None) => Ok((id, tags, actual)),
        (Err(e), Some(reason)) if reason == IMPORT_STOPPED => Err(e),
        (imported, Some(reason)) => {
            // The engine may have taken the whole archive before the
            // builder's exit code said it was not to be trusted.
            if imported.is_ok() {
                let _ = engine
                    .docker
                    .remove_image(&tags[0], None::<bollard::query_parameters::RemoveImageOptions>, None)
                    .await;
            }
            Err(Error::Other(format!(
                "the node image builder failed ({reason}){}",
                said.tail()
            )))
        }
        (Err(e), None) => Err(e),
    }
}

/// The image to build in: the user's, else a swarmlab node image already
/// on the engine (Debian, with apt: nothing to pull), else Debian's own.
async fn builder_image(engine: &HostEngine) -> Result<String> {
    if let Some(image) = std::env::var(BUILDER_IMAGE_VAR).ok().filter(|s| !s.is_empty()) {
        return present_or_pulled(engine, &image, &format!("the image in {BUILDER_IMAGE_VAR}")).await;
    }
    // Only swarmlab's own: an image made from one may lack apt.
    let own = format!("{REPOSITORY}:");
    let nodes = super::list(engine).await?;
    if let Some(tag) = nodes
        .iter()
        .flat_map(|node| &node.tags)
        .find(|tag| tag.starts_with(&own))
    {
        return Ok(tag.clone());
    }
    present_or_pulled(engine, DEFAULT_BUILDER, "the builder image").await
}

async fn present_or_pulled(engine: &HostEngine, image: &str, what: &str) -> Result<String> {
    host_images::present_or_pulled(engine, image).await.map_err(|reason| {
        Error::Prerequisite(format!(
            "{what}, {image}, is not on the engine and could not be pulled ({reason}): make it pullable, or name a Debian image with apt in {BUILDER_IMAGE_VAR}"
        ))
    })?;
    Ok(image.to_string())
}

/// What the builder says on stderr: progress lines, the last few kept for
/// an error.
#[derive(Default)]
struct Said {
    partial: Vec<u8>,
    last: Vec<String>,
}

impl Said {
    /// Takes a piece of stderr: whole lines are shown and the last kept.
    fn take(&mut self, bytes: &[u8], step: &str, progress: &dyn Progress) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim().trim_start_matches("I: ");
            if !line.is_empty() {
                progress.step(step, &format!("debootstrap: {line}"));
                self.keep(line.to_string());
            }
        }
    }

    fn keep(&mut self, line: String) {
        self.last.push(line);
        if self.last.len() > 5 {
            self.last.remove(0);
        }
    }

    /// Its last lines, for an error message.
    fn tail(&self) -> String {
        if self.last.is_empty() {
            String::new()
        } else {
            format!(": {}", self.last.join(" / "))
        }
    }

    /// The builder ended before its archive began.
    fn failure(&self) -> Error {
        Error::Other(format!(
            "the node image builder stopped before the root file system was made{}",
            self.tail()
        ))
    }
}

/// The built engine's version from the line before the archive.
fn version_of_header(line: &[u8]) -> Result<EngineVersion> {
    let line = String::from_utf8_lossy(line);
    line.strip_prefix(VERSION_MARK)
        .and_then(releases::from_version_line)
        .ok_or_else(|| {
            Error::Other(format!(
                "the node image builder did not say the built engine's version (it said {:?})",
                crate::error::one_line(line.chars().take(200).collect::<String>().trim())
            ))
        })
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
        assert!(SCRIPT.contains(&format!(
            "echo \"{VERSION_MARK}$(chroot /rootfs /usr/sbin/dockerd --version)\"\n"
        )));
    }

    #[test]
    fn the_header_gives_the_version_and_anything_else_is_an_error() {
        let version = version_of_header(b"swarmlab-engine-version: Docker version 26.1.5+dfsg1, build 411e817");
        assert_eq!(version.unwrap(), EngineVersion::parse("26.1.5").unwrap());
        let wrong = version_of_header(b"./\0\0\0 ustar").unwrap_err().to_string();
        assert!(wrong.contains("did not say the built engine's version"), "{wrong}");
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
