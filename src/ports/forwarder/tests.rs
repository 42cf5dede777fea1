use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::forwarder_container::{BackendStatus, PortPath, PublishMode};
use crate::ports::discovery::{Backend, Route, Target};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn route(port: u16, backends: Vec<Backend>) -> Route {
    Route {
        service: "web".into(),
        published: port,
        target_port: 8080,
        publish_mode: PublishMode::Ingress,
        path: PortPath::TaskDirect,
        backends,
        blocked: None,
    }
}

fn backend(address: std::net::SocketAddr) -> Backend {
    Backend {
        status: BackendStatus {
            task: "web.1".into(),
            node: "worker-1".into(),
            address: address.to_string(),
            ..Default::default()
        },
        target: Target::Direct(address),
    }
}

fn gate() -> Arc<Gate> {
    let limits = Limits::default();
    Arc::new(Gate {
        limits,
        slots: Arc::new(Semaphore::new(limits.max_connections as usize)),
        full: AtomicBool::new(false),
    })
}

#[tokio::test]
async fn listeners_follow_the_published_ports() {
    let (mut listening, mut said, gate) = (HashMap::new(), HashMap::new(), gate());
    let mut ledger = Ledger::default();
    let (empty, served) = (free_port(), free_port());
    let task = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let routes = [
        route(empty, vec![]),
        route(served, vec![backend(task.local_addr().unwrap())]),
    ];
    let statuses = reconcile(
        &routes,
        Ipv4Addr::LOCALHOST,
        &mut listening,
        &mut said,
        &gate,
        &mut ledger,
    );
    let states: Vec<PortState> = statuses.iter().map(|s| s.state).collect();
    assert_eq!(states, [PortState::NoBackends, PortState::Forwarding]);
    assert_eq!(listening.len(), 2, "both ports listen, with or without a task");
    assert_eq!(statuses[1].address, format!("127.0.0.1:{served}"));

    // A connection to the published port reaches the task.
    let mut client = TcpStream::connect(("127.0.0.1", served)).await.unwrap();
    let (mut accepted, _) = task.accept().await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    accepted.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");

    // A port no longer published is closed; the other's backend counted
    // the connection.
    let statuses = reconcile(
        &routes[1..],
        Ipv4Addr::LOCALHOST,
        &mut listening,
        &mut said,
        &gate,
        &mut ledger,
    );
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].backends[0].connections, 1);
    assert!(!listening.contains_key(&empty));
    assert!(TcpStream::connect(("127.0.0.1", empty)).await.is_err());
}

#[tokio::test]
async fn a_port_taken_on_the_host_is_said_and_the_others_go_on() {
    let (mut listening, mut said, gate) = (HashMap::new(), HashMap::new(), gate());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let free = free_port();
    let statuses = reconcile(
        &[route(taken_port, vec![]), route(free, vec![])],
        Ipv4Addr::LOCALHOST,
        &mut listening,
        &mut said,
        &gate,
        &mut Ledger::default(),
    );
    assert_eq!(statuses[0].state, PortState::PortTaken);
    assert!(
        statuses[0].message.contains("already in use"),
        "{}",
        statuses[0].message
    );
    assert_eq!(statuses[1].state, PortState::NoBackends);
    assert_eq!(
        said.get(&taken_port),
        Some(&statuses[0].message),
        "said once, remembered"
    );
}
