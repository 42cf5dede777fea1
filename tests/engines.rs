//! Finding the host engine as the docker CLI does: docker contexts, the
//! current context, and the exports that keep it after `swarmlab env`.

use std::process::Command;
use std::time::Duration;

use crate::support::{Test, TestCluster, stdout};

/// A docker config folder of its own, removed at the end.
struct DockerConfig(std::path::PathBuf);

impl DockerConfig {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("swarmlab-docker-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DockerConfig(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// The docker CLI, with this config folder.
    #[track_caller]
    fn docker(&self, args: &[&str]) -> String {
        let output = Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", &self.0)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout(&output)
    }
}

impl Drop for DockerConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_host_engine_comes_from_docker_contexts_as_for_the_docker_cli() {
    let cluster = TestCluster::create("contexts", &["--workers", "0"]);
    let config = DockerConfig::new("contexts");
    config.docker(&[
        "context",
        "create",
        "lab-engine",
        "--docker",
        "host=unix:///var/run/docker.sock",
    ]);

    // DOCKER_CONTEXT, with no DOCKER_HOST.
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_CONTEXT", "lab-engine")
        .args(["ls"])
        .stdout_has(&cluster.name)
        .run();
    // A context that does not exist: said at once.
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_CONTEXT", "nowhere")
        .args(["ls"])
        .fails_with(2, "docker context \"nowhere\" (from DOCKER_CONTEXT) does not exist")
        .run();
    // The current context; `swarmlab env` then keeps it for swarmlab.
    config.docker(&["context", "use", "lab-engine"]);
    let env = stdout(
        &Test::new()
            .env("DOCKER_CONFIG", config.path())
            .args(["env", "--name", &cluster.name])
            .run(),
    );
    assert!(env.contains("export SWARMLAB_DOCKER_CONTEXT=lab-engine"), "{env}");

    // A cluster's own context made current: swarmlab still finds the
    // engine that runs the nodes.
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .args(["context", "--name", &cluster.name])
        .run();
    let cluster_context = format!("swarmlab-{}", cluster.name);
    config.docker(&["context", "use", &cluster_context]);
    assert_eq!(
        config.docker(&["node", "ls", "--format", "{{.Hostname}}"]).trim(),
        "manager-1"
    );
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .args(["inspect", "--name", &cluster.name])
        .stdout_has("manager-1")
        .run();
    Test::new()
        .env("DOCKER_CONFIG", config.path())
        .args(["delete", "--name", &cluster.name])
        .stdout_has("Deleted cluster")
        .run();
}

/// The local engine's socket served over plain TCP on 127.0.0.2, an
/// address that says nothing of where the engine runs. Stops when dropped.
struct EngineElsewhere {
    address: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EngineElsewhere {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.2", 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        std::thread::spawn(move || relay_to_engine(client));
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        EngineElsewhere { address, stop }
    }
}

impl Drop for EngineElsewhere {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn relay_to_engine(client: std::net::TcpStream) {
    let Ok(engine) = std::os::unix::net::UnixStream::connect("/var/run/docker.sock") else {
        return;
    };
    let (mut client_read, mut engine_write) = (client.try_clone().unwrap(), engine.try_clone().unwrap());
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut engine_write);
        let _ = engine_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut engine_read, mut client_write) = (engine, client);
    let _ = std::io::copy(&mut engine_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
}

/// An engine reached at an address other than 127.0.0.1 is still this
/// machine's when it runs under this hostname and kernel: workers are
/// reached at their own addresses and publish no API port. (Workers of an
/// engine really elsewhere publish theirs: the real-host lane's remote
/// phase.)
#[test]
fn an_engine_at_another_address_of_this_machine_is_still_this_machines() {
    let elsewhere = EngineElsewhere::start();
    let engine = elsewhere.address;
    let name = crate::support::unique("remote");
    Test::new()
        .env("DOCKER_HOST", &format!("tcp://{engine}"))
        .args(["create", "--name", &name, "--workers", "1"])
        .stdout_has("is ready in")
        .run();
    let cluster = TestCluster::adopt(&name);
    let published = Command::new("docker")
        .args(["port", &format!("{name}-worker-1"), "2376/tcp"])
        .output()
        .unwrap();
    assert!(
        !published.status.success(),
        "the worker publishes no API port: {}",
        stdout(&published)
    );
    let listed = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    assert_eq!(listed.lines().filter(|l| l.ends_with("Ready")).count(), 2, "{listed}");
    Test::new()
        .env("DOCKER_HOST", &format!("tcp://{engine}"))
        .args(["node", "restart", "worker-1", "--name", &name])
        .stdout_has("worker-1")
        .run();
    cluster.delete();
}

/// scripts/ssh-engine: this machine's engine behind an sshd on 127.0.0.1
/// that lets in the key of user swarmlab-ssh; its ssh:// address.
fn ssh_engine() -> String {
    crate::support::engine_from_script("ssh-engine")
}

/// A shell command as user swarmlab-ssh (whose ssh setup holds the key),
/// `swarmlab` being this build, the engine at `host`.
fn as_ssh_user(host: &str, script: &str) -> std::process::Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_swarmlab")).parent().unwrap();
    Command::new("runuser")
        .args([
            "-u",
            "swarmlab-ssh",
            "--",
            "env",
            "-i",
            "HOME=/home/swarmlab-ssh",
            "SWARMLAB_PLAIN=1",
        ])
        .arg(format!("PATH={}:/usr/bin:/bin", bin.display()))
        .arg(format!("DOCKER_HOST={host}"))
        .args(["sh", "-c", script])
        .output()
        .unwrap()
}

/// A cluster of one manager and one worker, made by user swarmlab-ssh on
/// the ssh engine `host`; deleted when dropped.
struct SshCluster {
    host: String,
    name: String,
}

impl SshCluster {
    #[track_caller]
    fn create(host: &str, prefix: &str) -> SshCluster {
        let cluster = SshCluster {
            host: host.to_string(),
            name: crate::support::unique(prefix),
        };
        let created = as_ssh_user(host, &format!("swarmlab create --name {} --workers 1", cluster.name));
        assert!(
            stdout(succeeded(&created)).contains("is ready in"),
            "{}",
            stdout(&created)
        );
        cluster
    }
}

impl Drop for SshCluster {
    fn drop(&mut self) {
        as_ssh_user(&self.host, &format!("swarmlab delete --name {}", self.name));
    }
}

/// The output of a command that must have succeeded.
#[track_caller]
fn succeeded(output: &std::process::Output) -> &std::process::Output {
    assert!(
        output.status.success(),
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn an_ssh_engine_runs_a_cluster_as_the_docker_cli_reaches_it() {
    let host = ssh_engine();
    let cluster = SshCluster::create(&host, "ssh");
    let name = &cluster.name;
    // The docker CLI at the cluster, swarmlab still at the ssh engine.
    let nodes = as_ssh_user(
        &host,
        &format!("eval \"$(swarmlab env --name {name})\" && docker node ls -q | wc -l && swarmlab ls"),
    );
    let said = stdout(succeeded(&nodes));
    assert_eq!(said.lines().next(), Some("2"), "{said}");
    assert!(
        said.lines()
            .any(|l| l.starts_with(name.as_str()) && l.contains("running")),
        "{said}"
    );
    succeeded(&as_ssh_user(&host, &format!("swarmlab delete --name {name}")));
    let left = crate::support::host_docker(["ps", "-aq", "--filter", &format!("label=io.swarmlab.cluster={name}")]);
    assert!(left.trim().is_empty(), "containers left: {left}");

    // A user the engine's sshd does not let in: ssh's own words, at once.
    let refused = as_ssh_user(&host.replace("root@", "nobody@"), "swarmlab ls");
    let error = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(5), "{error}");
    assert!(
        error.contains("Permission denied (publickey)") && error.lines().count() == 1,
        "{error}"
    );
}

/// Whether user swarmlab-ssh runs a `swarmlab tunnels` process for the
/// engine at `host`.
fn tunnels_running(host: &str) -> bool {
    let found = Command::new("pgrep")
        .args(["-u", "swarmlab-ssh", "-f", "swarmlab tunnels"])
        .output()
        .unwrap();
    let wanted = format!("DOCKER_HOST={host}");
    stdout(&found).lines().any(|pid| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == wanted.as_bytes()))
    })
}

/// The box's name server (scripts/ssh-box): every question refused at
/// once, so that Swarm's pull before a task start fails fast, as it does
/// here. For as long as the test process runs; a second is not needed.
fn answer_the_box_names() {
    let Ok(socket) = std::net::UdpSocket::bind("10.203.0.1:53") else {
        return;
    };
    std::thread::spawn(move || {
        let mut question = [0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut question) {
            if len >= 12 {
                // The question back, flagged as an answer: REFUSED.
                let mut answer = question[..len].to_vec();
                answer[2] = 0x81;
                answer[3] = 0x85;
                answer[6..12].fill(0);
                let _ = socket.send_to(&answer, peer);
            }
        }
    });
}

/// scripts/ssh-box: an engine behind an sshd at 10.203.0.2, in namespaces
/// of its own, as on another machine: neither its containers' addresses
/// nor its 127.0.0.1 are this machine's. swarmlab tunnels the ports it
/// publishes here, a service's port published after create included, and
/// the tunnels go with the cluster.
///
/// Its engine is a newer one than this machine's (28.5) where
/// --privileged is refused too: the nodes run with the capability profile
/// that engine takes differently from 20.10.
#[test]
fn an_ssh_engine_on_another_machine_has_its_published_ports_tunnelled_here() {
    let host = crate::support::engine_from_script("ssh-box");
    answer_the_box_names();
    let cluster = SshCluster::create(&host, "sshbox");
    let name = &cluster.name;
    // The box's kernel has no IPVS either: the port is published in host
    // mode, which the forwarder on the cluster network serves.
    let port = crate::support::free_port();
    let deployed = as_ssh_user(
        &host,
        &format!(
            "set -e; swarmlab image build-demo >/dev/null; swarmlab image load --name {name} swarmlab/quotes:latest >/dev/null
             eval \"$(swarmlab env --name {name})\"; docker node ls -q | wc -l
             docker service create -q --detach --name quotes --publish mode=host,published={port},target=8080 swarmlab/quotes:latest >/dev/null"
        ),
    );
    let said = stdout(succeeded(&deployed));
    assert_eq!(said.lines().next(), Some("2"), "{said}");
    let answered = crate::support::within(Duration::from_secs(90), || {
        crate::support::http_get(port, "/api/quote").is_some()
    });
    assert!(answered.is_some(), "localhost:{port} never answered");
    assert!(tunnels_running(&host));

    // The service goes, and its tunnel with it.
    succeeded(&as_ssh_user(
        &host,
        &format!("eval \"$(swarmlab env --name {name})\"; docker service rm quotes >/dev/null"),
    ));
    let closed = crate::support::within(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(closed.is_some(), "the tunnel to {port} stayed");

    // The demo's ingress port cannot be served there (no IPVS, and the
    // forwarder on the cluster network does not reach tasks directly): it
    // says so within seconds, not after its two-minute wait.
    let demo_port = crate::support::free_port();
    let started = std::time::Instant::now();
    let demo = as_ssh_user(&host, &format!("swarmlab demo --name {name}-demo --port {demo_port}"));
    let error = String::from_utf8_lossy(&demo.stderr);
    assert_eq!(demo.status.code(), Some(9), "{error}");
    assert!(
        error.contains(&format!("localhost:{demo_port} cannot answer")) && error.contains("mode=host"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());

    succeeded(&as_ssh_user(&host, &format!("swarmlab delete --name {name}")));
    let ended = crate::support::within(Duration::from_secs(20), || !tunnels_running(&host));
    assert!(ended.is_some(), "swarmlab tunnels still runs after the delete");
}
