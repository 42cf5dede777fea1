//! Cluster files, the locked-down engine API, docker contexts, completions
//! and the man page.

use std::process::Command;

use crate::support::{Test, TestCluster, busybox_image, cert_dir, host_docker, leftovers, stdout, unique};

fn cluster_file(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cluster-files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn a_cluster_file_makes_exactly_that_cluster() {
    let name = unique("file");
    let path = cluster_file(
        &name,
        &format!(
            r#"
name = "{name}"
managers = 3
workers = 2
heartbeat = "2s"

[role.worker]
memory = "300MiB"

[nodes.worker-1]
labels = {{ disk = "ssd" }}
cpus = 0.5
"#
        ),
    );
    Test::new()
        .args(["create", "--config", path.to_str().unwrap(), "--heartbeat", "1s"])
        .stdout_has("3 managers and 2 workers")
        .run();
    let cluster = TestCluster::adopt(&name);

    let nodes = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"]);
    let mut lines: Vec<&str> = nodes.lines().map(str::trim_end).collect();
    lines.sort();
    assert_eq!(lines.len(), 5, "{nodes}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("Leader") || l.ends_with("Reachable"))
            .count(),
        3
    );
    let labels = cluster.docker(["node", "inspect", "worker-1", "--format", "{{json .Spec.Labels}}"]);
    assert_eq!(labels.trim(), r#"{"disk":"ssd"}"#);
    let limits = |node: &str| {
        host_docker([
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            &format!("{name}-{node}"),
        ])
    };
    assert_eq!(limits("worker-1").trim(), format!("{} 500000000", 300 << 20));
    assert_eq!(limits("worker-2").trim(), format!("{} 0", 300 << 20));
    assert_eq!(limits("manager-1").trim(), "0 0");
    let heartbeat = cluster.docker(["info", "--format", "{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}"]);
    assert_eq!(heartbeat.trim(), "1s", "the flag wins over the file");

    // Nodes added later get their role's settings.
    Test::new().args(["node", "add", "--name", &name]).run();
    assert_eq!(limits("worker-3").trim(), format!("{} 0", 300 << 20));
}

#[test]
fn an_invalid_cluster_file_is_refused_before_anything_is_made() {
    let name = unique("badfile");
    for (body, position, expected) in [
        ("workers = 1\ncolour = \"blue\"\n", "2:1", "unknown field `colour`"),
        ("workers = \"two\"\n", "1:11", "invalid type"),
        (
            "workers = 2\n\n[nodes.worker-4]\ncpus = 1\n",
            "3:1",
            "there is no node worker-4",
        ),
        ("[role.worker]\nmemory = \"12MiB\"\n", "1:1", "at least 64MiB"),
        ("heartbeat = \"soon\"\n", "1:13", "expected a duration"),
    ] {
        let path = cluster_file(&name, &format!("name = \"{name}\"\n{body}"));
        let line: usize = position.split(':').next().unwrap().parse().unwrap();
        let column = position.split(':').nth(1).unwrap();
        // The name line comes first, so positions move down one line.
        let at = format!("{}:{}:{column}:", path.display(), line + 1);
        Test::new()
            .args(["create", "--config", path.to_str().unwrap()])
            .fails_with(2, &at)
            .stderr_has(expected)
            .run();
        assert_eq!(leftovers(&name), Vec::<String>::new(), "nothing made for {body:?}");
    }
}

#[test]
fn the_engine_api_answers_only_its_owner() {
    let cluster = TestCluster::create("locked", &["--workers", "0"]);
    let env = cluster.env();
    let port = env["DOCKER_HOST"].rsplit(':').next().unwrap().to_string();
    let certs = std::path::PathBuf::from(&env["DOCKER_CERT_PATH"]);
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-s", "-m", "5"])
            .args(args)
            .output()
            .expect("curl runs (scripts/setup installs it)")
    };
    let url = format!("https://127.0.0.1:{port}/version");
    let plain = curl(&[&format!("http://127.0.0.1:{port}/version")]);
    assert!(!stdout(&plain).contains("ApiVersion"), "plain HTTP gets nothing useful");
    let ca = certs.join("ca.pem");
    let anonymous = curl(&["--cacert", ca.to_str().unwrap(), &url]);
    assert!(
        !anonymous.status.success() && !stdout(&anonymous).contains("ApiVersion"),
        "no client certificate, no answer"
    );

    // A client certificate from a CA the cluster does not know.
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger".to_string()]).unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("stranger-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), stranger.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), stranger.signing_key.serialize_pem()).unwrap();
    let unknown = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--key",
        dir.join("key.pem").to_str().unwrap(),
        &url,
    ]);
    assert!(
        !stdout(&unknown).contains("ApiVersion"),
        "an unknown client gets no answer"
    );

    let owner = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--cert",
        certs.join("cert.pem").to_str().unwrap(),
        "--key",
        certs.join("key.pem").to_str().unwrap(),
        &url,
    ]);
    assert!(
        stdout(&owner).contains("ApiVersion"),
        "the owner's client certificate works"
    );

    // The same through a docker context, without environment variables.
    Test::new()
        .args(["context", "--name", &cluster.name])
        .stdout_has(&format!("swarmlab-{}", cluster.name))
        .run();
    let context = format!("swarmlab-{}", cluster.name);
    let nodes = host_docker(["--context", &context, "node", "ls", "--format", "{{.Hostname}}"]);
    assert_eq!(nodes.trim(), "manager-1");
    let name = cluster.name.clone();
    cluster.delete();
    let gone = Command::new("docker")
        .args(["context", "inspect", &context])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "delete removes the context");
    assert!(!cert_dir(&name).exists(), "and the certificates");
}

#[test]
fn insecure_clusters_say_so_and_answer_plain_http() {
    let name = unique("insecure");
    Test::new()
        .args(["create", "--name", &name, "--workers", "0", "--insecure"])
        .stderr_has("warning: --insecure")
        .run();
    let cluster = TestCluster::adopt(&name);
    let exports = stdout(&Test::new().args(["env", "--name", &name]).run());
    assert!(
        exports.contains("unset DOCKER_TLS_VERIFY") && exports.contains("# warning"),
        "{exports}"
    );
    let env = cluster.env();
    assert!(!env.contains_key("DOCKER_TLS_VERIFY"), "{env:?}");
    let port = env["DOCKER_HOST"].rsplit(':').next().unwrap().to_string();
    let plain = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://127.0.0.1:{port}/version")])
        .output()
        .unwrap();
    assert!(stdout(&plain).contains("ApiVersion"));
    let nodes = Command::new("docker")
        .args(["node", "ls", "--format", "{{.Hostname}}"])
        .env("DOCKER_HOST", &env["DOCKER_HOST"])
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .unwrap();
    assert_eq!(stdout(&nodes).trim(), "manager-1");

    // Only the host reaches that plain API: not another node, not a
    // container inside a node.
    Test::new()
        .args(["node", "add", "--name", &name])
        .stdout_has("worker-1")
        .run();
    let manager = host_docker([
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("{name}-manager-1"),
    ]);
    // (busybox's nc: its static wget crashes on glibc's name service.)
    let ask_manager = format!(
        "printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {} 2376",
        manager.trim()
    );
    // The probe works: from the host's own network it gets an answer, so
    // the refusals below are the node's rule, not a broken probe.
    let from_host = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "host",
            busybox_image(),
            "sh",
            "-c",
            &ask_manager,
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&from_host).contains("ApiVersion"),
        "the host's network reaches the node's API: {}",
        stdout(&from_host)
    );
    let from_worker = Command::new("docker")
        .args([
            "exec",
            &format!("{name}-worker-1"),
            "timeout",
            "5",
            "docker",
            "-H",
            &format!("tcp://{}:2376", manager.trim()),
            "version",
        ])
        .output()
        .unwrap();
    assert!(!from_worker.status.success(), "another node is kept out");
    let busybox = busybox_image();
    Test::new().args(["image", "load", busybox, "--name", &name]).run();
    for node in ["manager-1", "worker-1"] {
        let from_task = Command::new("docker")
            .args([
                "exec",
                &format!("{name}-{node}"),
                "docker",
                "run",
                "--rm",
                busybox,
                "sh",
                "-c",
                &ask_manager,
            ])
            .output()
            .unwrap();
        assert!(
            !stdout(&from_task).contains("ApiVersion"),
            "a container inside {node} is kept out: {}",
            stdout(&from_task)
        );
    }
    let still = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://127.0.0.1:{port}/version")])
        .output()
        .unwrap();
    assert!(stdout(&still).contains("ApiVersion"), "and the host still gets in");
}

#[test]
fn completions_and_the_man_page_come_from_the_cli() {
    for (shell, marker) in [
        ("bash", "_swarmlab()"),
        ("zsh", "#compdef swarmlab"),
        ("fish", "complete -c swarmlab"),
    ] {
        let output = Test::new().args(["completions", shell]).run();
        let text = stdout(&output);
        assert!(text.contains(marker), "{shell}: {}", &text[..text.len().min(200)]);
        assert!(text.contains("rebalance"), "{shell} completes subcommands");
    }
    let man = stdout(&Test::new().args(["man"]).run());
    assert!(
        man.contains(".TH swarmlab 1") && man.contains("create"),
        "{}",
        &man[..man.len().min(200)]
    );
    let example = stdout(&Test::new().args(["config", "init"]).run());
    assert!(example.contains("[nodes.worker-1]") && example.contains("[[ports]]"));
}
