//! The web visualizer in a real browser: Debian's chromium, driven through
//! chromedriver with fantoccini.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::support::{Test, TestCluster, deploy, free_port, host_docker, http_get, swarmlab_command, within};

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Running, Client) {
    // Both of rustls' providers are built in; name one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/setup installs chromium-driver)");
    let driver = Running(driver);
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000"
            ]
        }
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..50 {
        let builder = ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(capabilities.clone())
            .connect(&url)
            .await;
        if let Ok(client) = builder {
            return (driver, client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {url}");
}

/// `swarmlab viz` of a cluster on a free loopback port, once it listens.
#[track_caller]
fn serve_viz(cluster: &str) -> (Running, u16) {
    let port = free_port();
    let server = swarmlab_command()
        .args(["viz", "--name", cluster, "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Running(server);
    let listening = within(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(listening.is_some(), "swarmlab viz listens");
    (server, port)
}

async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map(|found| found.len())
        .unwrap_or(0)
}

/// Polls the page until `css` matches `expected` elements.
async fn until_count(client: &Client, css: &str, expected: usize, within_secs: u64) -> bool {
    for _ in 0..within_secs * 10 {
        if count(client, css).await == expected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_follows_the_cluster_live() {
    let cluster = TestCluster::create("viz", &["--workers", "2", "--heartbeat", "1s"]);
    deploy(&cluster, "web", 2, &[]);
    let (_server, port) = serve_viz(&cluster.name);
    let (_driver, client) = browser().await;
    client.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();

    assert!(until_count(&client, "[data-node]", 3, 10).await, "a column per node");
    assert!(
        until_count(&client, ".task[data-service='web']", 2, 10).await,
        "a box per task"
    );
    for node in ["manager-1", "worker-1", "worker-2"] {
        assert_eq!(
            count(&client, &format!("[data-node='{node}'][data-state='ready']")).await,
            1,
            "{node} ready"
        );
    }

    // Live: no reload happens, the marker set on this page load survives.
    client
        .execute("window.notReloaded = true; return true;", vec![])
        .await
        .unwrap();
    cluster.docker(["service", "scale", "--detach", "web=5"]);
    assert!(
        until_count(&client, ".task[data-service='web']", 5, 15).await,
        "scaling adds boxes"
    );
    let same_page = client
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same_page, serde_json::Value::Bool(true), "the page was not reloaded");

    host_docker(["rm", "-f", &format!("{}-worker-2", cluster.name)]);
    assert!(
        until_count(&client, "[data-node='worker-2'][data-state='down']", 1, 10).await,
        "a removed worker is marked down"
    );

    Command::new(env!("CARGO_BIN_EXE_swarmlab"))
        .args(["delete", "--name", &cluster.name])
        .env("SWARMLAB_HOME", crate::support::home())
        .output()
        .unwrap();
    let mut said = String::new();
    for _ in 0..100 {
        said = client
            .find(Locator::Id("banner"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap_or_default();
        if said.contains("does not exist") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        said.contains("does not exist"),
        "a deleted cluster is said so on the page: {said:?}"
    );

    // Readable at the large end: 20 nodes, 100 tasks, on a 1400 px page.
    let layout = client
        .execute(LARGE_CLUSTER, vec![20.into(), 5.into()])
        .await
        .expect("the page draws a large snapshot");
    assert_eq!(layout["columns"], 20, "{layout}");
    assert_eq!(
        layout["boxes"],
        19 * 5 + 3,
        "12 tasks of 3 services on one node are 3 boxes: {layout}"
    );
    assert_eq!(
        layout["overflowsPage"], false,
        "columns wrap instead of overflowing: {layout}"
    );
    assert_eq!(layout["clippedBoxes"], 0, "no box clips its text: {layout}");
    assert!(layout["minFontPx"].as_f64().unwrap() >= 11.0, "{layout}");
    assert!(
        layout["rows"].as_u64().unwrap() >= 3,
        "20 columns wrap over several rows: {layout}"
    );

    // And at a hundred workers with 300 tasks, one node crowded: cards in a
    // grid, its tasks collapsed into a count per service, and filters.
    let layout = client
        .execute(LARGE_CLUSTER, vec![101.into(), 3.into()])
        .await
        .expect("the page draws a hundred nodes");
    assert_eq!(layout["columns"], 101, "{layout}");
    assert_eq!(layout["overflowsPage"], false, "{layout}");
    assert_eq!(layout["clippedBoxes"], 0, "{layout}");
    assert!(layout["minFontPx"].as_f64().unwrap() >= 11.0, "{layout}");
    assert!(
        layout["perRow"].as_u64().unwrap() >= 8,
        "dense cards: at least 8 a row on 1400 px: {layout}"
    );
    assert_eq!(
        layout["crowded"], "cache×4 quotes-service×4 web×4",
        "a crowded node shows a count per service: {layout}"
    );
    std::fs::write(
        concat!(env!("CARGO_TARGET_TMPDIR"), "/viz-101-nodes.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client
        .goto(&format!("http://127.0.0.1:{port}/?service=web&state=down"))
        .await
        .unwrap();
    let filtered = client
        .execute(
            &format!("{}\nreturn [controls.service.value, controls.state.value, document.querySelectorAll('[data-node]').length, document.querySelectorAll('.task:not([data-service=web])').length, location.search];", LARGE_CLUSTER.replace("return {", "const measured = {")),
            vec![101.into(), 3.into()],
        )
        .await
        .unwrap();
    assert_eq!(
        filtered,
        serde_json::json!(["web", "down", 1, 0, "?service=web&state=down"]),
        "filters from the address: only nodes down with web tasks, only web tasks"
    );
    client.close().await.unwrap();
}

/// Polls a script on the page until it returns true.
async fn until_true(client: &Client, script: &str, within_secs: u64) -> bool {
    for _ in 0..within_secs * 10 {
        if client.execute(script, vec![]).await.ok() == Some(serde_json::Value::Bool(true)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The page's timeline tells a worker crash and its recovery, and each
/// task box counts the requests the forwarder sent it.
#[tokio::test(flavor = "multi_thread")]
async fn the_timeline_tells_a_crash_and_the_recovery() {
    let cluster = TestCluster::create("viztime", &["--workers", "2", "--heartbeat", "1s"]);
    let port = free_port();
    deploy(&cluster, "web", 4, &["-p", &format!("{port}:8080")]);
    assert!(within(Duration::from_secs(20), || http_get(port, "/api/quote").is_some()).is_some());
    let (_server, viz) = serve_viz(&cluster.name);
    let (_driver, client) = browser().await;
    client.goto(&format!("http://127.0.0.1:{viz}/")).await.unwrap();
    assert!(until_count(&client, ".task[data-service='web']", 4, 10).await);

    for _ in 0..20 {
        http_get(port, "/api/quote").expect("the service answers");
    }
    let counted = "return [...document.querySelectorAll('.task[data-requests]')]
        .reduce((sum, box) => sum + Number(box.dataset.requests), 0) >= 20;";
    assert!(
        until_true(&client, counted, 10).await,
        "the boxes count the requests sent through the forwarder"
    );

    Test::new()
        .args(["node", "crash", "worker-2", "--name", &cluster.name])
        .run();
    let down = "li[data-kind='node-down'][data-subject='worker-2']";
    assert!(until_count(&client, down, 1, 10).await, "the crash is in the timeline");
    assert!(
        until_true(
            &client,
            "return document.querySelectorAll(\"li[data-kind='task-lost'][data-subject='web']\").length > 0
                && document.querySelectorAll(\"li[data-kind='task-started'][data-subject='web']\").length > 0;",
            20,
        )
        .await,
        "worker-2's tasks are lost and started elsewhere"
    );
    Test::new()
        .args(["node", "start", "worker-2", "--name", &cluster.name])
        .run();
    let up = "li[data-kind='node-up'][data-subject='worker-2']";
    assert!(until_count(&client, up, 1, 30).await, "the recovery is in the timeline");
    let order = client
        .execute(
            "const items = [...document.querySelectorAll('#events li')];
             return [items.findIndex(li => li.matches(arguments[0])), items.findIndex(li => li.matches(arguments[1]))];",
            vec![up.into(), down.into()],
        )
        .await
        .unwrap();
    let (up_at, down_at) = (order[0].as_i64().unwrap(), order[1].as_i64().unwrap());
    assert!(up_at < down_at, "newest first: up above down, {order}");
    std::fs::write(
        concat!(env!("CARGO_TARGET_TMPDIR"), "/viz-timeline.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.close().await.unwrap();
    cluster.delete();
}

/// Stops the live feed, draws `arguments[0]` nodes with `arguments[1]`
/// tasks each (the last worker 12), the fifth worker down, and measures.
const LARGE_CLUSTER: &str = include_str!("support/large_cluster.js");

/// Sends a GET with the given Host header; returns the status line's code
/// and the open connection (event streams stay open).
fn get(port: u16, path: &str, host: &str) -> (u16, std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut status = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut status)
        .unwrap();
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, stream)
}

/// The page answers only for its own address (no DNS rebinding), says
/// "public" out loud, and keeps a bound on the event streams it serves.
#[test]
fn the_visualizer_keeps_its_door_shut() {
    let cluster = TestCluster::create("vizdoor", &["--workers", "0"]);
    Test::new()
        .args(["viz", "--name", &cluster.name, "--addr", "0.0.0.0:0"])
        .fails_with(2, "add --public if that is meant")
        .run();
    let port = free_port();
    let public = swarmlab_command()
        .args([
            "viz",
            "--name",
            &cluster.name,
            "--addr",
            &format!("0.0.0.0:{port}"),
            "--public",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut public = Running(public);
    assert!(
        within(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok())
        .is_some()
    );
    public.0.kill().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(public.0.stderr.as_mut().unwrap(), &mut said).unwrap();
    assert!(said.contains("warning: --public"), "{said}");

    let (_server, port) = serve_viz(&cluster.name);
    let own = format!("127.0.0.1:{port}");
    assert_eq!(get(port, "/", &own).0, 200);
    assert_eq!(get(port, "/", &format!("localhost:{port}")).0, 200);
    assert_eq!(
        get(port, "/api/snapshot", &format!("rebound.example:{port}")).0,
        421,
        "DNS rebinding refused"
    );
    assert_eq!(get(port, "/", "127.0.0.1:1").0, 421);

    let streams: Vec<_> = (0..swarmlab::viz::MAX_STREAMS)
        .map(|_| {
            let (code, stream) = get(port, "/events", &own);
            assert_eq!(code, 200);
            stream
        })
        .collect();
    assert_eq!(get(port, "/events", &own).0, 503, "one stream too many");
    drop(streams);
    assert!(
        within(Duration::from_secs(5), || get(port, "/events", &own).0 == 200).is_some(),
        "closed streams give their places back"
    );
    cluster.delete();
}
