use super::*;
use crate::snapshot::fixtures;

fn kinds(timeline: &Timeline) -> Vec<(EventKind, String)> {
    timeline.events().iter().map(|e| (e.kind, e.text.clone())).collect()
}

#[test]
fn the_first_look_tells_nothing_and_an_unchanged_one_neither() {
    let mut timeline = Timeline::default();
    let snapshot = fixtures::snapshot();
    assert!(!timeline.observe(&snapshot, 1));
    assert!(!timeline.observe(&snapshot, 2));
    assert!(timeline.events().is_empty());
}

#[test]
fn a_crash_and_a_restart_are_down_lost_started_and_up() {
    let mut timeline = Timeline::default();
    let healthy = fixtures::snapshot();
    timeline.observe(&healthy, 1);

    let mut crashed = healthy.clone();
    let worker = &mut crashed.nodes[1];
    worker.state = NodeStatus::Down;
    worker.container_state = "exited".into();
    for task in &mut worker.tasks {
        task.lost = true;
    }
    assert!(timeline.observe(&crashed, 2));

    let mut replaced = crashed.clone();
    let mut moved = replaced.nodes[1].tasks[0].clone();
    moved.id = "new".into();
    moved.lost = false;
    replaced.nodes[2].tasks.push(moved);
    timeline.observe(&replaced, 3);

    let mut back = replaced.clone();
    back.nodes[1].state = NodeStatus::Ready;
    back.nodes[1].container_state = "running".into();
    back.nodes[1].tasks.clear();
    timeline.observe(&back, 4);

    assert_eq!(
        kinds(&timeline),
        vec![
            (EventKind::NodeDown, "worker-1 down: its container is exited".into()),
            (EventKind::TaskLost, "quotes.2 lost with worker-1".into()),
            (EventKind::TaskLost, "quotes.3 lost with worker-1".into()),
            (EventKind::TaskStarted, "quotes.2 started on worker-2".into()),
            (EventKind::NodeUp, "worker-1 up: Ready again".into()),
        ]
    );
    assert_eq!(timeline.events()[0].at_ms, 2);
    assert_eq!(timeline.events()[4].at_ms, 4);
}

#[test]
fn a_node_lost_while_its_container_runs_is_cut_off_then_healed() {
    let mut timeline = Timeline::default();
    let healthy = fixtures::snapshot();
    timeline.observe(&healthy, 1);
    let mut cut = healthy.clone();
    cut.nodes[2].state = NodeStatus::Down;
    timeline.observe(&cut, 2);
    timeline.observe(&healthy, 3);
    let kinds: Vec<_> = timeline.events().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::NodeCutOff, EventKind::NodeHealed]);
    assert_eq!(
        timeline.events()[0].text,
        "worker-2 cut off: the swarm says down, its container runs"
    );
}

#[test]
fn quorum_is_lost_and_regained_without_every_node_looking_down() {
    let mut timeline = Timeline::default();
    let healthy = fixtures::snapshot();
    timeline.observe(&healthy, 1);
    let mut leaderless = healthy.clone();
    leaderless.status = SnapshotStatus::QuorumLost;
    leaderless.message = "quorum lost in cluster lab".into();
    for node in &mut leaderless.nodes {
        node.state = NodeStatus::Absent;
        node.tasks.clear();
    }
    timeline.observe(&leaderless, 2);
    timeline.observe(&leaderless, 3);
    timeline.observe(&healthy, 4);
    assert_eq!(
        kinds(&timeline),
        vec![
            (EventKind::QuorumLost, "quorum lost in cluster lab".into()),
            (EventKind::QuorumRegained, "a leader is elected again".into()),
        ]
    );
}

#[test]
fn many_alike_task_events_become_one_and_failures_are_told_from_stops() {
    let mut timeline = Timeline::default();
    let small = fixtures::snapshot();
    timeline.observe(&small, 1);
    let mut scaled = fixtures::many(10);
    scaled.nodes[0].tasks.clear();
    scaled.failed.insert("quotes1".into());
    timeline.observe(&scaled, 2);
    let texts: Vec<_> = timeline.events().iter().map(|e| e.text.as_str()).collect();
    assert!(texts.contains(&"quotes.1 failed on manager-1"), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("quotes: ") && t.ends_with(" tasks started")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("8 nodes joined: worker-3, worker-4")),
        "many nodes joining are one event: {texts:?}"
    );
}

#[test]
fn a_node_joins_when_it_is_first_ready_not_when_its_container_starts() {
    let mut timeline = Timeline::default();
    let small = fixtures::snapshot();
    timeline.observe(&small, 1);
    let mut adding = small.clone();
    let mut new = adding.nodes[2].clone();
    new.hostname = "worker-3".into();
    new.state = NodeStatus::Absent;
    adding.nodes.push(new);
    timeline.observe(&adding, 2);
    assert!(
        timeline.events().is_empty(),
        "not in the swarm yet: {:?}",
        kinds(&timeline)
    );
    adding.nodes[3].state = NodeStatus::Ready;
    timeline.observe(&adding, 3);
    assert_eq!(
        kinds(&timeline),
        vec![(EventKind::NodeJoined, "worker-3 joined".into())]
    );
}

#[test]
fn quorum_regained_after_a_look_without_any_manager() {
    let mut timeline = Timeline::default();
    let healthy = fixtures::snapshot();
    timeline.observe(&healthy, 1);
    let mut leaderless = healthy.clone();
    leaderless.status = SnapshotStatus::QuorumLost;
    let mut silent = healthy.clone();
    silent.status = SnapshotStatus::Degraded;
    for look in [&leaderless, &silent, &leaderless, &silent, &healthy] {
        timeline.observe(look, 2);
    }
    let kinds: Vec<_> = timeline.events().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::QuorumLost, EventKind::QuorumRegained]);
}

#[test]
fn only_the_newest_events_are_kept() {
    let mut timeline = Timeline::default();
    let up = fixtures::snapshot();
    let mut down = up.clone();
    down.nodes[2].state = NodeStatus::Down;
    down.nodes[2].container_state = "exited".into();
    for at in 0..(KEPT as u64) {
        timeline.observe(if at % 2 == 0 { &up } else { &down }, at);
    }
    assert_eq!(timeline.events().len(), KEPT - 1);
    timeline.observe(&up, 1000);
    timeline.observe(&down, 1001);
    assert_eq!(timeline.events().len(), KEPT);
    assert_eq!(timeline.events().back().unwrap().at_ms, 1001);
}
