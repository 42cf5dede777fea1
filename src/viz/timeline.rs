//! What happened to a cluster, told from the difference between one
//! snapshot and the next: nodes going down and coming back, cut off and
//! healed, tasks failing and starting, quorum lost and regained. Pure: the
//! server feeds it snapshots and the time, the page shows the events.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::Serialize;

use crate::snapshot::{NodeView, Snapshot, SnapshotStatus};
use crate::swarm::NodeStatus;

/// Events kept for the page; older ones fall off.
const KEPT: usize = 200;
/// More task events than this of one kind and service in one look become
/// one event with a count, so a scale to 100 does not flood the list.
const GROUPED_PAST: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EventKind {
    NodeJoined,
    NodeLeft,
    /// Its container stopped, or the swarm lost it.
    NodeDown,
    NodeUp,
    /// The swarm lost it while its container ran on: a partition, or a
    /// hung engine.
    NodeCutOff,
    NodeHealed,
    TaskStarted,
    TaskFailed,
    /// Stopped on purpose (a scale-down, an update, a drain).
    TaskStopped,
    /// Its node went down; the swarm replaces it elsewhere.
    TaskLost,
    QuorumLost,
    QuorumRegained,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Event {
    /// Milliseconds since the Unix epoch.
    pub(crate) at_ms: u64,
    pub(crate) kind: EventKind,
    /// The node, or the service, it is about.
    pub(crate) subject: String,
    pub(crate) text: String,
}

#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// The last snapshot in which the swarm could be read: changes are
    /// told against it, so a stretch without a leader does not make every
    /// node look down.
    last_read: Option<Snapshot>,
    /// Said lost and not yet regained (looks without a manager in between
    /// change neither).
    quorum_lost: bool,
    /// Nodes that have been Ready in the swarm: the others have not joined
    /// yet, whatever their container does.
    joined: HashSet<String>,
    /// Nodes that are down, and whether they were cut off (their container
    /// ran on) when they went.
    down: HashMap<String, bool>,
    events: VecDeque<Event>,
}

impl Timeline {
    pub(crate) fn events(&self) -> &VecDeque<Event> {
        &self.events
    }

    /// Takes the next look at the cluster; says whether it added events.
    pub(crate) fn observe(&mut self, next: &Snapshot, at_ms: u64) -> bool {
        let mut new = Vec::new();
        match next.status {
            SnapshotStatus::QuorumLost if !self.quorum_lost => {
                self.quorum_lost = true;
                new.push((EventKind::QuorumLost, next.cluster.clone(), next.message.clone()));
            }
            SnapshotStatus::Ok if self.quorum_lost => {
                self.quorum_lost = false;
                new.push((
                    EventKind::QuorumRegained,
                    next.cluster.clone(),
                    "a leader is elected again".to_string(),
                ));
            }
            _ => {}
        }
        if next.status == SnapshotStatus::Ok {
            if let Some(previous) = self.last_read.take() {
                new.extend(grouped(self.node_changes(&previous, next)));
                new.extend(task_changes(&previous, next));
            } else {
                for node in &next.nodes {
                    if is_up(node) {
                        self.joined.insert(node.hostname.clone());
                    } else if node.state != NodeStatus::Absent {
                        self.joined.insert(node.hostname.clone());
                        self.down
                            .insert(node.hostname.clone(), node.container_state == "running");
                    }
                }
            }
            self.last_read = Some(next.clone());
        }
        let added = !new.is_empty();
        for (kind, subject, text) in new {
            self.events.push_back(Event {
                at_ms,
                kind,
                subject,
                text,
            });
        }
        while self.events.len() > KEPT {
            self.events.pop_front();
        }
        added
    }

    fn node_changes(&mut self, previous: &Snapshot, next: &Snapshot) -> Vec<(EventKind, String, String)> {
        let mut changes = Vec::new();
        let before: HashMap<&str, &NodeView> = previous.nodes.iter().map(|n| (n.hostname.as_str(), n)).collect();
        for node in &next.nodes {
            let host = node.hostname.clone();
            if !self.joined.contains(&host) {
                // Not in the swarm yet (a node being added or recreated):
                // it joins when it is first Ready.
                if is_up(node) {
                    self.joined.insert(host.clone());
                    changes.push((EventKind::NodeJoined, host.clone(), format!("{host} joined")));
                }
                continue;
            }
            let was_up = before.get(host.as_str()).is_some_and(|old| is_up(old));
            match (was_up, is_up(node)) {
                (true, false) => {
                    let cut_off = node.container_state == "running";
                    self.down.insert(host.clone(), cut_off);
                    changes.push(if cut_off {
                        (
                            EventKind::NodeCutOff,
                            host.clone(),
                            format!("{host} cut off: the swarm says {}, its container runs", node.state),
                        )
                    } else {
                        (
                            EventKind::NodeDown,
                            host.clone(),
                            format!("{host} down: its container is {}", node.container_state),
                        )
                    });
                }
                (false, true) => {
                    let cut_off = self.down.remove(&host).unwrap_or(false);
                    changes.push(if cut_off {
                        (
                            EventKind::NodeHealed,
                            host.clone(),
                            format!("{host} healed: Ready again"),
                        )
                    } else {
                        (EventKind::NodeUp, host.clone(), format!("{host} up: Ready again"))
                    });
                }
                _ => {}
            }
        }
        for old in &previous.nodes {
            if !next.nodes.iter().any(|n| n.hostname == old.hostname) && self.joined.remove(&old.hostname) {
                self.down.remove(&old.hostname);
                changes.push((
                    EventKind::NodeLeft,
                    old.hostname.clone(),
                    format!("{} left the cluster", old.hostname),
                ));
            }
        }
        changes
    }
}

/// More than a few node events of one kind in one look (a create or an
/// add of many nodes) become one.
fn grouped(changes: Vec<(EventKind, String, String)>) -> Vec<(EventKind, String, String)> {
    let mut by_kind: BTreeMap<EventKind, Vec<(EventKind, String, String)>> = BTreeMap::new();
    for change in changes {
        by_kind.entry(change.0).or_default().push(change);
    }
    by_kind
        .into_iter()
        .flat_map(|(kind, changes)| {
            if changes.len() <= GROUPED_PAST {
                return changes;
            }
            let verb = match kind {
                EventKind::NodeJoined => "joined",
                EventKind::NodeLeft => "left",
                EventKind::NodeDown => "went down",
                EventKind::NodeUp => "came up",
                EventKind::NodeCutOff => "were cut off",
                _ => "healed",
            };
            let names: Vec<&str> = changes.iter().map(|c| c.1.as_str()).collect();
            vec![(
                kind,
                "nodes".to_string(),
                format!("{} nodes {verb}: {}", changes.len(), names.join(", ")),
            )]
        })
        .collect()
}

fn is_up(node: &NodeView) -> bool {
    node.state == NodeStatus::Ready
}

/// Running tasks by ID, with the node they run on.
fn running(snapshot: &Snapshot) -> BTreeMap<&str, (&NodeView, String)> {
    snapshot
        .nodes
        .iter()
        .flat_map(|node| {
            node.tasks
                .iter()
                .filter(|t| t.state == "running" && !t.lost)
                .map(move |t| (t.id.as_str(), (node, format!("{}.{}", t.service, t.slot))))
        })
        .collect()
}

fn task_changes(previous: &Snapshot, next: &Snapshot) -> Vec<(EventKind, String, String)> {
    let (was, is) = (running(previous), running(next));
    // (kind, service) to (task, node) pairs, so that many alike become one.
    let mut found: BTreeMap<(EventKind, &str), Vec<(&str, &str)>> = BTreeMap::new();
    for (id, (node, name)) in &is {
        if !was.contains_key(id) {
            let service = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            found
                .entry((EventKind::TaskStarted, service))
                .or_default()
                .push((name, &node.hostname));
        }
    }
    for (id, (node, name)) in &was {
        if is.contains_key(id) {
            continue;
        }
        let node_down = next
            .nodes
            .iter()
            .find(|n| n.hostname == node.hostname)
            .is_none_or(|n| !is_up(n));
        let kind = if next.failed.contains(*id) {
            EventKind::TaskFailed
        } else if node_down {
            EventKind::TaskLost
        } else {
            EventKind::TaskStopped
        };
        let service = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
        found.entry((kind, service)).or_default().push((name, &node.hostname));
    }
    let mut changes = Vec::new();
    // Ends before starts: a replacement follows the task it replaces.
    let order = |kind: &EventKind| *kind == EventKind::TaskStarted;
    let mut groups: Vec<_> = found.into_iter().collect();
    groups.sort_by_key(|((kind, _), _)| order(kind));
    for ((kind, service), tasks) in groups {
        let (verb, at) = match kind {
            EventKind::TaskStarted => ("started", "on"),
            EventKind::TaskFailed => ("failed", "on"),
            EventKind::TaskLost => ("lost", "with"),
            _ => ("stopped", "on"),
        };
        if tasks.len() > GROUPED_PAST {
            changes.push((
                kind,
                service.to_string(),
                format!("{service}: {} tasks {verb}", tasks.len()),
            ));
        } else {
            for (task, node) in tasks {
                changes.push((kind, service.to_string(), format!("{task} {verb} {at} {node}")));
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests;
