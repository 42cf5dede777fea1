//! ssh:// engines, reached as the docker CLI reaches them: the system's
//! ssh (the user's config, keys and agent) runs `docker system dial-stdio`
//! on the engine's machine, and HTTP goes over its standard input and
//! output, one ssh per pooled connection. bollard's own ssh transport is
//! not used: it loses the port of `ssh://host:port`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bollard::{BollardRequest, ClientVersion, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, Join, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::error::{Error, Result};

/// Where an `ssh://[user@]host[:port]` address leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SshTarget {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl SshTarget {
    pub(super) fn parse(address: &str) -> Result<SshTarget> {
        let wrong = |why: &str| {
            Error::invalid(format!(
                "{address:?}: {why}; write ssh://[user@]host[:port], as for the docker CLI"
            ))
        };
        let rest = address
            .strip_prefix("ssh://")
            .ok_or_else(|| wrong("not an ssh:// address"))?;
        if rest.contains(['/', '?', '#']) {
            return Err(wrong("an ssh:// address has no path"));
        }
        let (user, authority) = match rest.rsplit_once('@') {
            Some((user, authority)) if !user.is_empty() => (Some(user.to_string()), authority),
            Some(_) => return Err(wrong("the user before @ is empty")),
            None => (None, rest),
        };
        // [v6]:port or host:port.
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| wrong("no ] after the IPv6 address"))?;
                match after {
                    "" => (host, None),
                    _ => (
                        host,
                        Some(
                            after
                                .strip_prefix(':')
                                .ok_or_else(|| wrong("only :port may follow ]"))?,
                        ),
                    ),
                }
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(wrong("no host"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| wrong("the port is not a number from 1 to 65535"))
            })
            .transpose()?;
        Ok(SshTarget {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// ssh's arguments to reach the engine, as the docker CLI gives them.
    fn args(&self) -> Vec<String> {
        let mut options = Vec::new();
        // One handshake for the many connections of one command.
        if let Some(dir) = control_dir() {
            let path = format!("ControlPath={}/%C", dir.display());
            for option in ["ControlMaster=auto", path.as_str(), "ControlPersist=10"] {
                options.extend(["-o".into(), option.into()]);
            }
        }
        let mut args = self.command(&options);
        args.extend(["docker", "system", "dial-stdio"].map(String::from));
        args
    }

    /// ssh's arguments with `options` before the host (a command may
    /// follow), and unattended: keys or an agent, never a password prompt.
    pub(super) fn command(&self, options: &[String]) -> Vec<String> {
        let mut args = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "ConnectTimeout=30".into(),
        ];
        args.extend_from_slice(options);
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend(["--".into(), self.host.clone()]);
        args
    }

    /// A name for files about this target: its letters and digits.
    pub(super) fn file_name(&self) -> String {
        let whole = format!(
            "{}@{}:{}",
            self.user.as_deref().unwrap_or(""),
            self.host,
            self.port.unwrap_or(22)
        );
        whole
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
            .collect()
    }
}

/// A folder for ssh's control sockets that only this user can enter: a
/// socket in a folder others may write to could be theirs, and ssh would
/// hand it the whole conversation with the engine. Short, for the length
/// limit of socket paths. None (no multiplexing) where it cannot be had.
#[cfg(unix)]
pub(super) fn control_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::path::PathBuf::from(format!("/tmp/swarmlab-ssh-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0).then_some(dir)
}

#[cfg(not(unix))]
pub(super) fn control_dir() -> Option<std::path::PathBuf> {
    None
}

/// What ssh last said on its standard error, for a failed connection's
/// message ("Permission denied (publickey)", an unknown host key).
static SAID: Mutex<String> = Mutex::new(String::new());

/// The last line ssh said, waiting a moment for it: a failed connection
/// shows as closed output a little before ssh's standard error is read.
pub(super) async fn last_said() -> Option<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let line = SAID.lock().ok().and_then(|said| {
            let line = said.lines().rev().find(|l| !l.trim().is_empty())?;
            Some(line.trim().to_string())
        });
        if line.is_some() || tokio::time::Instant::now() >= deadline {
            return line;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A client of the engine that `address` (ssh://...) leads to.
pub(super) fn client(address: &str, timeout: u64, version: &ClientVersion) -> Result<Docker> {
    let target = SshTarget::parse(address)?;
    let http = Client::builder(TokioExecutor::new()).build(Connector { target });
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let http = http.clone();
            async move { http.request(request).await.map_err(bollard::errors::Error::from) }
        },
        Some(address),
        timeout,
        version,
    )
    .map_err(|e| Error::Other(crate::error::engine_message(&e)))
}

#[derive(Clone)]
struct Connector {
    target: SshTarget,
}

/// Every request goes to the one engine the ssh target leads to, whatever
/// its URI says.
impl<Uri> tower_service::Service<Uri> for Connector {
    type Response = TokioIo<SshStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let args = self.target.args();
        Box::pin(async move { SshStream::spawn(&args).map(TokioIo::new) })
    }
}

/// One ssh process: HTTP out on its standard input, in on its output.
struct SshStream {
    /// Left to end once the connection goes (see Drop).
    ssh: Option<Child>,
    io: Join<ChildStdout, ChildStdin>,
}

/// Killing ssh with the connection would lose what was written last and
/// not yet sent (a node's TLS identity is written, then the connection
/// dropped: the node then found no identity). ssh ends by itself once its
/// input closes, which follows this; it is killed only if it has not
/// within a few seconds.
impl Drop for SshStream {
    fn drop(&mut self) {
        if let Some(mut ssh) = self.ssh.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if tokio::time::timeout(std::time::Duration::from_secs(5), ssh.wait())
                    .await
                    .is_err()
                {
                    let _ = ssh.kill().await;
                }
            });
        }
    }
}

impl SshStream {
    fn spawn(args: &[String]) -> io::Result<SshStream> {
        let mut ssh = Command::new("ssh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) = (ssh.stdin.take(), ssh.stdout.take(), ssh.stderr.take())
        else {
            return Err(io::Error::other("ssh's standard streams are missing"));
        };
        tokio::spawn(async move {
            let mut said = Vec::new();
            if tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut said)
                .await
                .is_ok()
                && !said.is_empty()
                && let Ok(mut last) = SAID.lock()
            {
                *last = String::from_utf8_lossy(&said).into_owned();
            }
        });
        Ok(SshStream {
            ssh: Some(ssh),
            io: tokio::io::join(stdout, stdin),
        })
    }
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for SshStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::SshTarget;

    fn target(user: Option<&str>, host: &str, port: Option<u16>) -> SshTarget {
        SshTarget {
            user: user.map(String::from),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn files_about_a_target_are_named_by_its_letters_and_digits() {
        assert_eq!(
            SshTarget::parse("ssh://root@10.203.0.2").unwrap().file_name(),
            "root_10.203.0.2_22"
        );
        assert_eq!(SshTarget::parse("ssh://[::1]:2222").unwrap().file_name(), "___1_2222");
    }

    #[test]
    fn ssh_addresses_as_the_docker_cli_writes_them() {
        assert_eq!(SshTarget::parse("ssh://box").unwrap(), target(None, "box", None));
        assert_eq!(
            SshTarget::parse("ssh://root@127.0.0.1:2222").unwrap(),
            target(Some("root"), "127.0.0.1", Some(2222))
        );
        assert_eq!(
            SshTarget::parse("ssh://me@[::1]:22").unwrap(),
            target(Some("me"), "::1", Some(22))
        );
        for wrong in [
            "ssh://",
            "ssh://@box",
            "ssh://box:0",
            "ssh://box:ssh",
            "ssh://box/var/run",
            "ssh://[::1]x",
            "tcp://box",
        ] {
            let error = SshTarget::parse(wrong).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{wrong}");
            assert!(error.to_string().contains("ssh://[user@]host[:port]"), "{error}");
        }
    }

    #[test]
    fn ssh_runs_dial_stdio_with_the_port_and_user_given() {
        let args = SshTarget::parse("ssh://root@127.0.0.1:2222").unwrap().args();
        let tail = &args[args.iter().position(|a| a == "-l").unwrap()..];
        assert_eq!(
            tail,
            [
                "-l",
                "root",
                "-p",
                "2222",
                "--",
                "127.0.0.1",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
        assert!(args.windows(2).any(|w| w == ["-o", "BatchMode=yes"]), "{args:?}");
    }
}
