//! `swarmlab traffic`: the seed's curl loop, counted, through a crash.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Test, TestCluster, deploy, free_port, host_docker, http_get, swarmlab_command, within};

#[test]
fn traffic_counts_each_replica_through_a_worker_crash() {
    let cluster = TestCluster::create("traffic", &["--workers", "3", "--heartbeat", "1s"]);
    let port = free_port();
    deploy(&cluster, "web", 11, &["-p", &format!("{port}:8080")]);
    assert!(within(Duration::from_secs(20), || http_get(port, "/api/quote").is_some()).is_some());
    // A task container's hostname is its short ID, and the demo service
    // answers with it: these are worker-2's replicas.
    let on_worker_2: Vec<String> = host_docker(["exec", &format!("{}-worker-2", cluster.name), "docker", "ps", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!on_worker_2.is_empty(), "11 replicas on 4 nodes put some on worker-2");

    let started = Instant::now();
    let traffic = swarmlab_command()
        .args([
            "traffic",
            "--port",
            &port.to_string(),
            "--rate",
            "20",
            "--duration",
            "20s",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let crashing = started.elapsed().as_secs_f64();
    Test::new()
        .args(["node", "crash", "worker-2", "--name", &cluster.name])
        .run();
    let output = traffic.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!(
        "traffic through a worker crash: {} answered, {} failed, longest gap {:.2}s, reasons {}",
        summary["answered"], summary["failed"], summary["longest_gap"], summary["reasons"]
    );

    let replicas = summary["per_replica"].as_object().unwrap();
    let answers: u64 = replicas.values().map(|r| r["answers"].as_u64().unwrap()).sum();
    assert_eq!(
        answers,
        summary["answered"].as_u64().unwrap(),
        "per replica adds up: {summary}"
    );
    assert_eq!(
        summary["requests"].as_u64().unwrap(),
        summary["answered"].as_u64().unwrap() + summary["failed"].as_u64().unwrap()
    );
    assert!(
        summary["answered"].as_u64().unwrap() >= 300,
        "20 a second for 20 s: {summary}"
    );
    // The traffic started a little after `started`: its times are a bit
    // smaller than ours for the same moment.
    for failure in summary["failures"].as_array().unwrap() {
        assert!(
            failure["at"].as_f64().unwrap() >= crashing - 0.5,
            "a failure before the crash: {failure} (crash at {crashing:.1}s)"
        );
    }
    let of_worker_2: Vec<(&String, &serde_json::Value)> = replicas
        .iter()
        .filter(|(replica, _)| on_worker_2.iter().any(|id| replica.starts_with(&format!("{id}/"))))
        .collect();
    assert_eq!(
        of_worker_2.len(),
        on_worker_2.len(),
        "worker-2's replicas answered before: {summary}"
    );
    for (replica, counts) in &of_worker_2 {
        assert!(
            counts["last"].as_f64().unwrap() < crashing + 1.5,
            "{replica} on the crashed worker answered after the crash: {counts}"
        );
    }
    assert!(
        replicas.values().any(|r| r["last"].as_f64().unwrap() > crashing + 10.0),
        "the others keep answering: {summary}"
    );
    // The forwarder counted what it carried to each task still a backend.
    let ports = crate::support::json(&Test::new().args(["ports", "--json", "--name", &cluster.name]).run());
    let web = &ports["ports"][0];
    let carried: u64 = web["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["connections"].as_u64().unwrap())
        .sum();
    // A status the forwarder stopped writing shows its age.
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_sub(ports["updated"].as_u64().unwrap_or_default());
    assert!(
        carried >= 100,
        "connections counted per backend (status written {age}s ago): {web}"
    );
    assert!(
        web["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["bytes_out"].as_u64().unwrap() > 0 || b["connections"] == 0),
        "{web}"
    );
}

#[test]
fn traffic_to_a_port_nothing_answers_says_so() {
    let port = free_port();
    Test::new()
        .args(["traffic", "--port", &port.to_string(), "--duration", "1s"])
        .fails_with(1, "nothing listens on 127.0.0.1")
        .run();
    Test::new()
        .args(["traffic", "--path", "no slash"])
        .fails_with(2, "is not a request path")
        .run();
    Test::new()
        .args(["traffic", "--rate", "0"])
        .fails_with(2, "--rate")
        .run();
}
