//! Snapshots made up for the tests of what draws or reads them.

use super::{NodeView, Snapshot, SnapshotStatus, TaskView};
use crate::naming::Role;
use crate::stats::Usage;
use crate::swarm::{Availability, ManagerStatus, NodeStatus};

pub(crate) fn snapshot() -> Snapshot {
    let usage = |cpu: f64, mib: u64| Usage {
        cpu_percent: cpu,
        memory_bytes: mib << 20,
        memory_limit: 1 << 34,
        net_rx_bytes: 1_500_000,
        net_tx_bytes: 800_000,
    };
    let task = |service: &str, slot: u32| TaskView {
        id: format!("{service}{slot}"),
        service: service.into(),
        slot: slot.to_string(),
        image: "swarmlab/quotes:latest".into(),
        state: "running".into(),
        lost: false,
        container: format!("c-{service}-{slot}"),
        requests: None,
    };
    let node = |host: &str, role: Role, cpu: f64, mib: u64, tasks: Vec<TaskView>| NodeView {
        hostname: host.into(),
        role,
        manager_status: if role == Role::Manager {
            ManagerStatus::Leader
        } else {
            ManagerStatus::NotManager
        },
        availability: Availability::Active,
        engine_version: "20.10.24".into(),
        state: NodeStatus::Ready,
        container: format!("lab-{host}"),
        container_state: "running".into(),
        usage: Some(usage(cpu, mib)),
        tasks,
    };
    Snapshot {
        cluster: "lab".into(),
        status: SnapshotStatus::Ok,
        message: String::new(),
        nodes: vec![
            node("manager-1", Role::Manager, 3.5, 42, vec![task("quotes", 1)]),
            node(
                "worker-1",
                Role::Worker,
                12.25,
                35,
                vec![task("quotes", 2), task("quotes", 3)],
            ),
            node("worker-2", Role::Worker, 0.5, 36, vec![]),
        ],
        failed: Default::default(),
    }
}

/// One manager and `workers` workers, three tasks each on the workers,
/// CPU figures that do not follow the names.
pub(crate) fn many(workers: u32) -> Snapshot {
    let mut snapshot = snapshot();
    let template = snapshot.nodes[1].clone();
    snapshot.nodes.truncate(1);
    for i in 1..=workers {
        let mut node = template.clone();
        node.hostname = format!("worker-{i}");
        node.container = format!("lab-worker-{i}");
        if let Some(usage) = node.usage.as_mut() {
            usage.cpu_percent = f64::from((i * 37) % 101) / 10.0;
        }
        node.tasks = (0..3)
            .map(|k| {
                let mut task = template.tasks[0].clone();
                task.slot = (i * 3 + k).to_string();
                task.id = format!("quotes{}", task.slot);
                task
            })
            .collect();
        snapshot.nodes.push(node);
    }
    snapshot
}
