//! The test builder and helpers. Everything runs against the real Docker
//! engine that scripts/setup started; nothing is mocked.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod cluster;

pub use cluster::{TestCluster, deploy, node_ids};

/// Where the swarmlab under test keeps its data (TLS material).
pub fn home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("swarmlab-home")
}

/// Where swarmlab keeps a cluster's TLS material: per host engine, by the
/// engine's ID.
pub fn cert_dir(cluster: &str) -> PathBuf {
    home()
        .join("engines")
        .join(engine_folder())
        .join("clusters")
        .join(cluster)
}

/// The host engine's ID as swarmlab names its folder.
pub fn engine_folder() -> String {
    host_docker(["info", "--format", "{{.ID}}"])
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A cluster name unique to this test run, so that runs never collide.
pub fn unique(name: &str) -> String {
    format!("t{}-{name}", std::process::id() % 100_000)
}

/// The swarmlab binary with a clean environment: the host engine from the
/// default socket, plain progress lines, a private data directory.
pub fn swarmlab_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_swarmlab"));
    for var in [
        "DOCKER_HOST",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CONTEXT",
        "SWARMLAB_DOCKER_HOST",
        "SWARMLAB_CLUSTER",
        "SWARMLAB_NODE_IMAGE",
        "SWARMLAB_SUBNET_POOL",
    ] {
        command.env_remove(var);
    }
    command.env("SWARMLAB_HOME", home()).env("SWARMLAB_PLAIN", "1");
    command
}

/// A fluent description of one swarmlab invocation and what it must print.
#[must_use]
pub struct Test {
    args: Vec<String>,
    env: Vec<(String, String)>,
    status: i32,
    stdout: Vec<String>,
    stderr: Vec<String>,
    one_line_error: bool,
}

impl Test {
    pub fn new() -> Self {
        Test {
            args: Vec::new(),
            env: Vec::new(),
            status: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            one_line_error: false,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn stdout_has(mut self, text: &str) -> Self {
        self.stdout.push(text.to_string());
        self
    }

    pub fn stderr_has(mut self, text: &str) -> Self {
        self.stderr.push(text.to_string());
        self
    }

    /// Expects a failure with exit code `status` and exactly one line on
    /// stderr, starting "swarmlab: error:", containing `text`.
    pub fn fails_with(mut self, status: i32, text: &str) -> Self {
        self.status = status;
        self.one_line_error = true;
        self.stderr.push(text.to_string());
        self
    }

    #[track_caller]
    pub fn run(self) -> Output {
        let mut command = swarmlab_command();
        command.args(&self.args);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = command.output().expect("swarmlab runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let context = format!(
            "swarmlab {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            self.args.join(" ")
        );
        assert_eq!(output.status.code(), Some(self.status), "exit code of {context}");
        for text in &self.stdout {
            assert!(stdout.contains(text), "stdout lacks {text:?} in {context}");
        }
        for text in &self.stderr {
            assert!(stderr.contains(text), "stderr lacks {text:?} in {context}");
        }
        assert!(!stderr.contains("panicked"), "panic in {context}");
        if self.one_line_error {
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('[')).collect();
            assert_eq!(lines.len(), 1, "one error line expected in {context}");
            assert!(lines[0].starts_with("swarmlab: error: "), "error line in {context}");
        }
        output
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The docker CLI against the host engine; panics unless it succeeds.
#[track_caller]
pub fn host_docker<I: IntoIterator<Item = S>, S: AsRef<str>>(args: I) -> String {
    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
    let output = Command::new("docker")
        .args(&args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether the host engine has `image`.
pub fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Containers, volumes and networks on the host engine labelled with `cluster`.
#[track_caller]
pub fn leftovers(cluster: &str) -> Vec<String> {
    let filter = format!("label=io.swarmlab.cluster={cluster}");
    let mut found = Vec::new();
    for kind in [
        vec!["ps", "-a", "--format", "container {{.Names}}"],
        vec!["volume", "ls", "--format", "volume {{.Name}}"],
        vec!["network", "ls", "--format", "network {{.Name}}"],
    ] {
        let mut args: Vec<&str> = kind[..kind.len() - 2].to_vec();
        args.extend(["--filter", &filter, kind[kind.len() - 2], kind[kind.len() - 1]]);
        found.extend(host_docker(args).lines().map(str::to_string));
    }
    found
}

/// A plain HTTP GET to 127.0.0.1:`port`; the body, or None when nothing
/// answers within a second.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Polls `check` every 100 ms until it holds; returns how long that took,
/// or None at `limit`.
pub fn within(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    loop {
        if check() {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Sends SIGINT to `child`, as Ctrl-C in its terminal would.
#[track_caller]
pub fn interrupt(child: &std::process::Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -INT {}", child.id());
}

/// Waits for `child` to exit within `limit`; kills it and fails otherwise.
#[track_caller]
pub fn exit_within(child: &mut std::process::Child, limit: std::time::Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("it did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Reads `child`'s stderr on a thread of its own: each line as it comes.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The stages of a `swarmlab demo --json` report, in order.
#[track_caller]
pub fn demo_stages(report: &serde_json::Value) -> Vec<&str> {
    report["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect()
}

#[track_caller]
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("swarmlab prints JSON")
}

/// `swarmlab-test/busybox:latest`: Debian's static busybox alone, for a
/// client (wget) inside a node's containers. Built once.
pub fn busybox_image() -> &'static str {
    static IMAGE: std::sync::OnceLock<&str> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let image = "swarmlab-test/busybox:latest";
        if !image_exists(image) {
            let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (scripts/setup installs busybox-static)");
            let mut archive = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_size(busybox.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            archive
                .append_data(&mut header, "bin/busybox", busybox.as_slice())
                .unwrap();
            let archive = archive.into_inner().unwrap();
            let mut import = Command::new("docker")
                .args(["import", "--change", r#"ENTRYPOINT ["/bin/busybox"]"#, "-", image])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            std::io::Write::write_all(import.stdin.as_mut().unwrap(), &archive).unwrap();
            drop(import.stdin.take());
            assert!(import.wait().unwrap().success(), "docker import of {image}");
        }
        image
    })
}

/// Runs `scripts/NAME`, which sets up (idempotently) an engine beside this
/// machine's, and returns the address it prints.
#[track_caller]
pub fn engine_from_script(name: &str) -> String {
    let output = Command::new(format!("scripts/{name}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("scripts/{name} runs: {e}"));
    assert!(
        output.status.success(),
        "scripts/{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
