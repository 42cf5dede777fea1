//! `swarmlab top`: a ctop-like terminal view of a cluster's node containers
//! and, for one node, its task containers. State (app), drawing (draw)
//! and data collection (the snapshot collector, stats feeds) are apart.

mod app;
mod draw;

use std::time::Duration;

use crossterm::event::{Event, KeyEventKind};
use tokio::sync::{mpsc, watch};

pub(crate) use app::{Action, App};

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::snapshot::{Collector, Snapshot};
use crate::stats::StatsFeed;

const REFRESH: Duration = Duration::from_secs(1);

/// Runs the view until the user quits; the terminal is restored on the way
/// out, also after a panic.
pub async fn run(cluster: &Cluster) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(Error::invalid(
            "swarmlab top needs a terminal; for scripts use `swarmlab inspect --json`",
        ));
    }
    let (publish, mut snapshots) = watch::channel(Snapshot::default());
    let mut collector = Collector::new(&cluster.engine, &cluster.name);
    let collecting = tokio::spawn(async move {
        loop {
            let _ = publish.send(collector.collect().await);
            tokio::time::sleep(REFRESH).await;
        }
    });
    let (key_tx, mut keys) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if key_tx.send(event).is_err() {
                break;
            }
        }
    });

    // ratatui::init also installs a panic hook that restores the terminal.
    let mut terminal = ratatui::init();
    let mut app = App::new(cluster.name.as_str());
    let mut tasks_feed: TasksFeed = None;
    let mut tick = tokio::time::interval(REFRESH);
    // Fault injection for the test that the terminal survives a panic.
    let panic_after_draw = std::env::var_os("SWARMLAB_TOP_FAULT").is_some_and(|f| f == "panic");
    let outcome = loop {
        // The node table's rows: the screen less the title, footer, borders
        // and column header.
        app.page = terminal.size().map_or(10, |s| usize::from(s.height.saturating_sub(5)));
        if let Err(e) = terminal.draw(|frame| draw::draw(frame, &app)) {
            break Err(Error::Other(format!("cannot draw: {e}")));
        }
        if panic_after_draw {
            panic!("fault injected by SWARMLAB_TOP_FAULT");
        }
        tokio::select! {
            Some(event) = keys.recv() => {
                if let Event::Key(key) = event
                    && key.kind == KeyEventKind::Press
                    && app.key(key) == Action::Quit
                {
                    break Ok(());
                }
            }
            Ok(()) = snapshots.changed() => {
                let snapshot = snapshots.borrow_and_update().clone();
                app.update(snapshot);
            }
            _ = tick.tick() => follow_tasks(cluster, &mut app, &mut tasks_feed),
        }
    };
    ratatui::restore();
    collecting.abort();
    outcome
}

/// The open node's engine and the stats streams of its task containers.
type TasksFeed = Option<(String, bollard::Docker, StatsFeed)>;

/// Streams the stats of the open node's task containers from its engine.
fn follow_tasks(cluster: &Cluster, app: &mut App, feed: &mut TasksFeed) {
    let Some(node) = app.open_node().cloned() else {
        *feed = None;
        return;
    };
    if feed.as_ref().is_none_or(|(host, _, _)| *host != node.hostname) {
        *feed = cluster
            .container_of(&node.hostname)
            .and_then(|c| cluster.node_engine(c).ok())
            .map(|docker| (node.hostname.clone(), docker, StatsFeed::default()));
    }
    if let Some((_, docker, stats)) = feed {
        let ids: Vec<String> = node.tasks.iter().map(|t| t.container.clone()).collect();
        stats.track(docker, &ids);
        app.task_usage = node
            .tasks
            .iter()
            .filter_map(|t| Some((t.container.clone(), stats.get(&t.container)?)))
            .collect();
    }
}
