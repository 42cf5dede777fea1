//! The forwards of a tunnels process (see `tunnels`): one ssh connection
//! whose control socket adds and cancels them, or an ssh a port where ssh
//! has no control sockets; and what ssh says about them.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::ssh::SshTarget;

/// How long ssh may take to log in.
const LOGIN_WAIT: Duration = Duration::from_secs(30);

pub(super) struct Tunnels {
    target: SshTarget,
    /// The control socket of the one connection; None: an ssh a port.
    socket: Option<PathBuf>,
    master: Option<Child>,
    /// The forwarded ports, with their own ssh where they have one.
    open: HashMap<u16, Option<Child>>,
    /// Ports refused, with why, said once.
    refused: HashMap<u16, String>,
    /// What the connection's ssh said (a tunnel the far end refused,
    /// "administratively prohibited"), not yet passed on.
    heard: Arc<Mutex<Vec<String>>>,
    last_heard: Option<String>,
}

impl Tunnels {
    /// None open yet; `socket`: the one connection's control socket, None
    /// for an ssh a port.
    pub(super) fn new(target: SshTarget, socket: Option<PathBuf>) -> Self {
        Tunnels {
            target,
            socket,
            master: None,
            open: HashMap::new(),
            refused: HashMap::new(),
            heard: Arc::default(),
            last_heard: None,
        }
    }

    pub(super) async fn reconcile(&mut self, wanted: &BTreeSet<u16>, say: &dyn Fn(&str)) {
        // Each refused connection says the same: once is enough.
        for line in self.heard() {
            let gist = without_channel(&line).to_string();
            if self.last_heard.as_ref() != Some(&gist) {
                say(&format!("ssh: {line}"));
                self.last_heard = Some(gist);
            }
        }
        // A tunnel whose ssh ended is open no more; nor is any that went
        // through a connection that ended (sleep, a network change).
        self.open
            .retain(|_, child| child.as_mut().is_none_or(|c| matches!(c.try_wait(), Ok(None))));
        if self.socket.is_some() && !self.master_alive() {
            self.open.clear();
        }
        let closing: Vec<u16> = self.open.keys().filter(|p| !wanted.contains(p)).copied().collect();
        for port in closing {
            if self.open.remove(&port).flatten().is_none() {
                let _ = self.control("cancel", Some(port)).await;
            }
            say(&format!("- {port}"));
        }
        self.refused.retain(|port, _| wanted.contains(port));
        if wanted.iter().all(|p| self.open.contains_key(p)) {
            return;
        }
        if let Err(why) = self.connected().await {
            say(&format!("ssh: {why}"));
            return;
        }
        let opening: Vec<u16> = wanted.iter().filter(|p| !self.open.contains_key(p)).copied().collect();
        for port in opening {
            let opened = match self.socket {
                Some(_) => self.control("forward", Some(port)).await.map(|()| None),
                None => self.own_ssh(port).await.map(Some),
            };
            match opened {
                Ok(child) => {
                    self.open.insert(port, child);
                    self.refused.remove(&port);
                    say(&format!("+ {port}"));
                }
                Err(why) => {
                    if self.refused.get(&port) != Some(&why) {
                        say(&format!("! {port}: {why}"));
                        self.refused.insert(port, why);
                    }
                }
            }
        }
    }

    fn master_alive(&mut self) -> bool {
        self.master.as_mut().is_some_and(|m| matches!(m.try_wait(), Ok(None)))
    }

    /// Makes sure the one connection is up, where there is one.
    async fn connected(&mut self) -> std::result::Result<(), String> {
        let Some(socket) = self.socket.clone() else {
            return Ok(());
        };
        if self.master_alive() {
            return Ok(());
        }
        // A new connection has none of the old one's forwards.
        self.open.retain(|_, child| child.is_some());
        if socket.exists() {
            // The connection of a tunnels process that was killed outlives
            // it, holding its ports here: it is ended, not just forgotten.
            let _ = self.control("exit", None).await;
            let _ = std::fs::remove_file(&socket);
        }
        let options = [
            "ControlMaster=yes".to_string(),
            format!("ControlPath={}", socket.display()),
            "ControlPersist=no".into(),
        ];
        let mut master = self.lasting_ssh(&options, &[])?;
        if let Some(stderr) = master.stderr.take() {
            let heard = self.heard.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut heard) = heard.lock() {
                        heard.push(line);
                    }
                }
            });
        }
        let deadline = Instant::now() + LOGIN_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = master.try_wait() {
                // Its last words, once they are read.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(self.heard().pop().unwrap_or_else(|| "ssh ended".into()));
            }
            if socket.exists() {
                self.master = Some(master);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no login within {} s", LOGIN_WAIT.as_secs()))
    }

    /// An ssh that holds its connection (`-N`) until killed or dropped,
    /// with `options` (`-o`) and `extra` arguments; its errors piped.
    fn lasting_ssh(&self, options: &[String], extra: &[String]) -> std::result::Result<Child, String> {
        let mut args: Vec<String> = options
            .iter()
            .chain(&["ServerAliveInterval=15".to_string()])
            .flat_map(|o| ["-o".to_string(), o.clone()])
            .collect();
        args.push("-N".into());
        args.extend_from_slice(extra);
        Command::new("ssh")
            .args(self.target.command(&args))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run ssh: {e}"))
    }

    /// What the connection's ssh said since last asked.
    fn heard(&self) -> Vec<String> {
        self.heard
            .lock()
            .map(|mut heard| std::mem::take(&mut *heard))
            .unwrap_or_default()
    }

    /// `ssh -O forward` or `-O cancel` for `port`, or `-O exit`, through the
    /// one connection.
    async fn control(&self, verb: &str, port: Option<u16>) -> std::result::Result<(), String> {
        let socket = self.socket.as_ref().ok_or("no control socket")?;
        let mut options = vec![
            "-o".to_string(),
            format!("ControlPath={}", socket.display()),
            "-O".into(),
            verb.into(),
        ];
        if let Some(port) = port {
            options.extend(["-L".into(), forward(port)]);
        }
        let output = Command::new("ssh")
            .args(self.target.command(&options))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(last_line(&output.stderr))
        }
    }

    /// An ssh of its own for `port`, once its forward is in place.
    async fn own_ssh(&self, port: u16) -> std::result::Result<Child, String> {
        let mut child = self.lasting_ssh(&["ExitOnForwardFailure=yes".into()], &["-L".into(), forward(port)])?;
        let deadline = Instant::now() + LOGIN_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
                return Err(last_line(&output.stderr));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("no tunnel within {} s", LOGIN_WAIT.as_secs()))
    }
}

/// The control socket's file name: a socket's path may be 104 bytes long
/// at most (macOS; 108 on Linux), ssh adds 17 while it makes it, and a
/// cloud machine's host name alone can take 60. So a hash of the target,
/// the same from one swarmlab to the next (FNV-1a): a later process must
/// find the socket a killed one left.
pub(super) fn socket_name(target: &str) -> String {
    let hash = target.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("t-{hash:016x}")
}

/// What ssh said without the number it gives each tunnel it opens ("channel
/// 3: open failed: ..."): the same refusal again differs only by it.
fn without_channel(line: &str) -> &str {
    line.strip_prefix("channel ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(number, _)| number.chars().all(|c| c.is_ascii_digit()))
        .map_or(line, |(_, said)| said)
}

/// `-L`'s argument: this machine's 127.0.0.1:port to the engine's.
fn forward(port: u16) -> String {
    format!("127.0.0.1:{port}:127.0.0.1:{port}")
}

fn last_line(said: &[u8]) -> String {
    String::from_utf8_lossy(said)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or_else(|| "ssh ended".to_string(), |l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_said_again_is_known_without_its_channel_number() {
        assert_eq!(
            without_channel("channel 7: open failed: administratively prohibited: open failed"),
            "open failed: administratively prohibited: open failed"
        );
        assert_eq!(
            without_channel("Permission denied (publickey)."),
            "Permission denied (publickey)."
        );
        assert_eq!(without_channel("channel x: y"), "channel x: y");
    }

    #[test]
    fn the_control_socket_has_a_short_name_of_its_own_per_target() {
        let long = "ec2-user@ec2-18-222-33-44.us-east-2.compute.amazonaws.com:22";
        assert_eq!(socket_name(long).len(), 18);
        assert_eq!(socket_name(long), socket_name(long));
        assert_ne!(
            socket_name(long),
            socket_name("ec2-user@ec2-18-222-33-45.us-east-2.compute.amazonaws.com:22")
        );
        assert_eq!(
            socket_name(""),
            "t-cbf29ce484222325",
            "FNV-1a's offset basis: the hash is FNV-1a"
        );
    }

    #[test]
    fn a_port_comes_to_the_same_number_here() {
        assert_eq!(forward(8080), "127.0.0.1:8080:127.0.0.1:8080");
        assert_eq!(
            last_line(b"warning\nmux_client_forward: forwarding request failed\n\n"),
            "mux_client_forward: forwarding request failed"
        );
        assert_eq!(last_line(b""), "ssh ended");
    }
}
