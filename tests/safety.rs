//! swarmlab never touches what it did not make: names it would use that
//! belong to someone else, a cluster another run is creating, another
//! engine's certificates.

use std::process::Stdio;

use crate::support::{Test, TestCluster, cert_dir, home, host_docker, leftovers, stdout, swarmlab_command, unique};

/// Whether the host engine has a container or volume of that name.
fn container_exists(name: &str) -> bool {
    !host_docker(["ps", "-aq", "--filter", &format!("name=^{name}$")])
        .trim()
        .is_empty()
}

fn volume_exists(name: &str) -> bool {
    !host_docker(["volume", "ls", "-q", "--filter", &format!("name=^{name}$")])
        .trim()
        .is_empty()
}

/// A container of the user's own, made and never started: a name only.
fn users_container(name: &str) {
    host_docker(["create", "--name", name, "swarmlab/quotes:latest"]);
}

#[test]
fn the_demo_refuses_an_existing_cluster_and_leaves_it_as_it_was() {
    let cluster = TestCluster::create("mine", &["--workers", "1"]);
    Test::new()
        .args(["demo", "--name", &cluster.name])
        .fails_with(4, "already exists")
        .run();
    let listed: serde_json::Value = serde_json::from_slice(&Test::new().args(["ls", "--json"]).run().stdout).unwrap();
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster.name.as_str())
        .expect("the cluster is still there");
    assert_eq!(mine["status"], "running", "{mine}");
    assert!(cert_dir(&cluster.name).is_dir(), "and so are its certificates");
    cluster.delete();
}

#[test]
fn a_volume_of_someone_elses_is_neither_mounted_nor_removed() {
    let name = unique("uservol");
    let volume = format!("{name}-worker-1");
    host_docker(["volume", "create", &volume]);
    Test::new()
        .args(["create", "--name", &name, "--workers", "1"])
        .fails_with(4, "swarmlab leaves it alone")
        .run();
    assert!(volume_exists(&volume), "the user's volume stays");
    assert_eq!(leftovers(&name), Vec::<String>::new(), "the rollback removed the rest");
    host_docker(["volume", "rm", &volume]);
}

#[test]
fn node_add_restart_and_ports_leave_containers_of_the_same_name_alone() {
    let cluster = TestCluster::create("usernames", &["--workers", "1"]);
    let name = cluster.name.clone();

    // node add: worker-2's name is taken; the add fails and rolls back its
    // own volume, not the user's container.
    let taken = format!("{name}-worker-2");
    users_container(&taken);
    Test::new()
        .args(["node", "add", "--name", &name])
        .fails_with(4, "exists already")
        .run();
    assert!(container_exists(&taken), "the user's container stays");
    assert!(!volume_exists(&taken), "the add's own volume went");
    host_docker(["rm", &taken]);

    // node restart of a node whose container is gone while a container of
    // the user's has taken its name.
    let worker = format!("{name}-worker-1");
    host_docker(["rm", "-f", &worker]);
    users_container(&worker);
    Test::new()
        .args(["node", "restart", "worker-1", "--name", &name])
        .fails_with(4, "exists already")
        .run();
    assert!(container_exists(&worker), "the user's container stays");
    host_docker(["rm", &worker]);
    Test::new()
        .args(["node", "restart", "worker-1", "--name", &name])
        .stdout_has("worker-1")
        .run();

    // The forwarder's name taken by a container of the user's.
    let forwarder = format!("{name}-ports");
    host_docker(["rm", "-f", &forwarder]);
    users_container(&forwarder);
    Test::new()
        .args(["ports", "--name", &name])
        .fails_with(4, "not the port forwarder")
        .run();
    let labels = host_docker(["inspect", "-f", "{{json .Config.Labels}}", &forwarder]);
    assert!(!labels.contains("io.swarmlab.cluster"), "untouched: {labels}");
    host_docker(["rm", &forwarder]);
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// Two creates of one name at once: one wins, the other fails without
/// removing anything of the winner's, whose cluster works.
#[test]
fn of_two_creates_of_one_name_at_once_one_wins_untouched() {
    let name = unique("race");
    let spawn = || {
        swarmlab_command()
            .args(["create", "--name", &name, "--workers", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let report = outputs
        .iter()
        .map(|o| {
            format!(
                "{:?}: {}{}",
                o.status.code(),
                stdout(o),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert_eq!(codes.iter().filter(|c| **c == Some(0)).count(), 1, "one wins: {report}");
    assert!(
        codes.contains(&Some(4)),
        "the other is told the cluster exists: {report}"
    );
    let cluster = TestCluster::adopt(&name);
    let listed = cluster.docker(["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    let mut nodes: Vec<&str> = listed.lines().collect();
    nodes.sort();
    assert_eq!(nodes, ["manager-1 Ready", "worker-1 Ready"], "{report}");
    cluster.delete();
    assert_eq!(leftovers(&name), Vec::<String>::new());
}

/// The certificates live per host engine: a cluster of the same name made
/// on another engine keeps its own through this engine's create and delete.
#[test]
fn another_engines_certificates_of_the_same_name_are_left_alone() {
    let name = unique("tlskey");
    let other = home()
        .join("engines")
        .join("ANOTHER-ENGINE")
        .join("clusters")
        .join(&name);
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("ca.pem"), "another engine's CA").unwrap();
    let cluster = TestCluster::create("tlskey", &["--workers", "0"]);
    assert!(
        cert_dir(&name).join("ca.pem").is_file(),
        "this engine's, in its own folder"
    );
    cluster.delete();
    assert!(!cert_dir(&name).exists());
    assert_eq!(
        std::fs::read_to_string(other.join("ca.pem")).unwrap(),
        "another engine's CA"
    );
    std::fs::remove_dir_all(home().join("engines").join("ANOTHER-ENGINE")).unwrap();
}

/// Key material stays out of `docker inspect`, the CA's key is not kept,
/// certificates are good for a year, and `swarmlab start` renews those
/// near their end, or made by a swarmlab that kept the CA key.
#[test]
fn keys_stay_hidden_certificates_expire_and_start_renews_them() {
    let cluster = TestCluster::create("certs", &["--workers", "1"]);
    let name = cluster.name.clone();
    let dir = cert_dir(&name);
    assert!(!dir.join("ca-key.pem").exists(), "the CA key is not kept");
    let containers = host_docker(["ps", "-aq", "--filter", &format!("label=io.swarmlab.cluster={name}")]);
    assert_eq!(containers.lines().count(), 3, "two nodes and the forwarder");
    for id in containers.lines() {
        let inspected = host_docker(["inspect", id]);
        assert!(!inspected.contains("PRIVATE KEY"), "{id}: a key in docker inspect");
        assert!(
            !inspected.contains("BEGIN CERTIFICATE"),
            "{id}: certificates in docker inspect"
        );
    }
    let end_date = |dir: &std::path::Path| {
        let output = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-in"])
            .arg(dir.join("cert.pem"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let year = |text: &str| -> u32 {
        text.split_whitespace()
            .find_map(|w| w.parse().ok().filter(|y| *y > 2000))
            .unwrap()
    };
    let this_year: u32 = host_docker([
        "run",
        "--rm",
        "--entrypoint",
        "/bin/date",
        "swarmlab/node:latest",
        "+%Y",
    ])
    .trim()
    .parse()
    .unwrap();
    assert_eq!(
        year(&end_date(&dir)),
        this_year + 1,
        "good for a year: {}",
        end_date(&dir)
    );

    // As if made long ago by a swarmlab that kept the CA key: a day left.
    let old_ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let node_ids = crate::support::node_ids(&cluster);
    let containers_before = host_docker(["ps", "-aq", "--filter", &format!("label=io.swarmlab.cluster={name}")]);
    std::fs::write(dir.join("expires"), "2000-01-01T00:00:00Z").unwrap();
    std::fs::write(dir.join("ca-key.pem"), "an old CA key").unwrap();
    Test::new().args(["stop", "--name", &name]).run();
    let output = Test::new().args(["start", "--name", &name]).run();
    let said = format!("{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("renewed the cluster's TLS certificates"), "{said}");
    assert_ne!(std::fs::read_to_string(dir.join("ca.pem")).unwrap(), old_ca, "a new CA");
    assert!(!dir.join("ca-key.pem").exists(), "the old CA key went");
    // Every container was made anew, the nodes on their volumes: the same
    // swarm nodes, presenting the new identity.
    let containers_after = host_docker(["ps", "-aq", "--filter", &format!("label=io.swarmlab.cluster={name}")]);
    for id in containers_before.lines() {
        assert!(!containers_after.contains(id), "{id} was made anew");
    }
    assert_eq!(
        crate::support::node_ids(&cluster),
        node_ids,
        "the same swarm nodes, all Ready"
    );
    // The forwarder uses the new identity: it reads the swarm without error
    // (once the manager it asks has come up again).
    let mut ports = serde_json::Value::Null;
    let settled = crate::support::within(std::time::Duration::from_secs(30), || {
        ports = crate::support::json(&Test::new().args(["ports", "--name", &name, "--json"]).run());
        ports["error"] == ""
    });
    assert!(settled.is_some(), "{ports}");
    cluster.delete();
}
