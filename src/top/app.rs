//! The state of `swarmlab top` and how keys change it. No I/O here.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::snapshot::{NodeView, Snapshot};
use crate::stats::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKey {
    Name,
    Cpu,
    Memory,
    Tasks,
}

impl SortKey {
    pub(crate) fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Cpu => "cpu",
            SortKey::Memory => "memory",
            SortKey::Tasks => "tasks",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum View {
    Nodes,
    /// One node's task containers.
    Node(String),
}

/// What the main loop should do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Continue,
    Quit,
}

pub(crate) struct App {
    pub(crate) snapshot: Snapshot,
    pub(crate) sort: SortKey,
    /// The selected node, by name: it stays selected as the rows move
    /// under it (a re-sort by CPU, nodes coming and going).
    selected: Option<String>,
    /// Rows a page key moves by: the node table's height, as last drawn.
    pub(crate) page: usize,
    pub(crate) view: View,
    /// Usage of task containers of the open node, by container ID.
    pub(crate) task_usage: HashMap<String, Usage>,
}

impl App {
    pub(crate) fn new(cluster: &str) -> Self {
        App {
            snapshot: Snapshot {
                cluster: cluster.to_string(),
                message: "reading the cluster...".into(),
                ..Default::default()
            },
            sort: SortKey::Name,
            selected: None,
            page: 10,
            view: View::Nodes,
            task_usage: HashMap::new(),
        }
    }

    /// The nodes in the chosen order.
    pub(crate) fn rows(&self) -> Vec<&NodeView> {
        let mut rows: Vec<&NodeView> = self.snapshot.nodes.iter().collect();
        let cpu = |n: &NodeView| n.usage.map(|u| u.cpu_percent).unwrap_or(0.0);
        let memory = |n: &NodeView| n.usage.map(|u| u.memory_bytes).unwrap_or(0);
        match self.sort {
            SortKey::Name => {}
            SortKey::Cpu => rows.sort_by(|a, b| cpu(b).total_cmp(&cpu(a))),
            SortKey::Memory => rows.sort_by_key(|n| std::cmp::Reverse(memory(n))),
            SortKey::Tasks => rows.sort_by_key(|n| std::cmp::Reverse(running_tasks(n))),
        }
        rows
    }

    /// The node whose task containers are shown, if any.
    pub(crate) fn open_node(&self) -> Option<&NodeView> {
        match &self.view {
            View::Node(host) => self.snapshot.nodes.iter().find(|n| &n.hostname == host),
            View::Nodes => None,
        }
    }

    /// The selected row: the selected node's, else the first.
    pub(crate) fn selected(&self) -> usize {
        let rows = self.rows();
        self.selected
            .as_ref()
            .and_then(|host| rows.iter().position(|n| &n.hostname == host))
            .unwrap_or(0)
    }

    /// Selects the row `by` away from the selected one, kept in range.
    fn move_selection(&mut self, by: isize) {
        let rows = self.rows();
        let last = rows.len().saturating_sub(1);
        let to = self.selected().saturating_add_signed(by).min(last);
        self.selected = rows.get(to).map(|n| n.hostname.clone());
    }

    pub(crate) fn update(&mut self, snapshot: Snapshot) {
        // Where the selected node went away, its row's place stays selected.
        // Until the user picks one, the top row is selected, whichever it is.
        let at = self.selected();
        self.snapshot = snapshot;
        if self
            .selected
            .as_ref()
            .is_some_and(|host| !self.snapshot.nodes.iter().any(|n| &n.hostname == host))
        {
            let rows = self.rows();
            self.selected = rows
                .get(at.min(rows.len().saturating_sub(1)))
                .map(|n| n.hostname.clone());
        }
    }

    /// Cluster totals for the header: CPU % (of one core), memory, and
    /// running tasks, over the nodes with figures.
    pub(crate) fn totals(&self) -> (f64, u64, usize) {
        let nodes = &self.snapshot.nodes;
        (
            nodes.iter().filter_map(|n| n.usage).map(|u| u.cpu_percent).sum(),
            nodes.iter().filter_map(|n| n.usage).map(|u| u.memory_bytes).sum(),
            nodes.iter().map(running_tasks).sum(),
        )
    }

    pub(crate) fn key(&mut self, key: KeyEvent) -> Action {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => {
                if self.view == View::Nodes && key.code == KeyCode::Esc {
                    return Action::Quit;
                }
                self.view = View::Nodes;
                self.task_usage.clear();
            }
            KeyCode::Char('n') => self.sort = SortKey::Name,
            KeyCode::Char('c') => self.sort = SortKey::Cpu,
            KeyCode::Char('m') => self.sort = SortKey::Memory,
            KeyCode::Char('t') => self.sort = SortKey::Tasks,
            KeyCode::Char('s') => {
                self.sort = match self.sort {
                    SortKey::Name => SortKey::Cpu,
                    SortKey::Cpu => SortKey::Memory,
                    SortKey::Memory => SortKey::Tasks,
                    SortKey::Tasks => SortKey::Name,
                }
            }
            KeyCode::Down | KeyCode::Char('j') if self.view == View::Nodes => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') if self.view == View::Nodes => self.move_selection(-1),
            KeyCode::PageDown if self.view == View::Nodes => self.move_selection(self.page.max(1) as isize),
            KeyCode::PageUp if self.view == View::Nodes => self.move_selection(-(self.page.max(1) as isize)),
            KeyCode::Home | KeyCode::Char('g') if self.view == View::Nodes => self.move_selection(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') if self.view == View::Nodes => self.move_selection(isize::MAX / 2),
            KeyCode::Enter | KeyCode::Right if self.view == View::Nodes => {
                if let Some(node) = self.rows().get(self.selected()) {
                    self.view = View::Node(node.hostname.clone());
                }
            }
            _ => {}
        }
        Action::Continue
    }
}

pub(crate) fn running_tasks(node: &NodeView) -> usize {
    node.tasks.iter().filter(|t| t.state == "running" && !t.lost).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(app: &mut App, code: KeyCode) -> Action {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn sorting_and_opening_a_node() {
        let mut app = App::new("lab");
        app.update(crate::snapshot::fixtures::snapshot());
        let order = |app: &App| app.rows().iter().map(|n| n.hostname.clone()).collect::<Vec<_>>();
        assert_eq!(order(&app), ["manager-1", "worker-1", "worker-2"]);
        press(&mut app, KeyCode::Char('c'));
        assert_eq!(order(&app), ["worker-1", "manager-1", "worker-2"]);
        press(&mut app, KeyCode::Char('m'));
        assert_eq!(order(&app)[0], "manager-1");
        press(&mut app, KeyCode::Char('t'));
        assert_eq!(order(&app)[0], "worker-1");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.view, View::Node("worker-1".into()));
        assert_eq!(app.open_node().unwrap().tasks.len(), 2);
        assert_eq!(press(&mut app, KeyCode::Esc), Action::Continue);
        assert_eq!(app.view, View::Nodes);
        assert_eq!(press(&mut app, KeyCode::Char('q')), Action::Quit);
    }

    #[test]
    fn selection_stays_in_range() {
        let mut app = App::new("lab");
        app.update(crate::snapshot::fixtures::snapshot());
        for _ in 0..10 {
            press(&mut app, KeyCode::Down);
        }
        assert_eq!(app.selected(), 2);
        let mut fewer = crate::snapshot::fixtures::snapshot();
        fewer.nodes.truncate(1);
        app.update(fewer);
        assert_eq!(app.selected(), 0);
    }

    #[test]
    fn a_hundred_nodes_page_and_the_selection_follows_its_node() {
        let mut app = App::new("lab");
        app.update(crate::snapshot::fixtures::many(100));
        app.page = 20;
        press(&mut app, KeyCode::PageDown);
        press(&mut app, KeyCode::PageDown);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.rows()[app.selected()].hostname, "worker-41");
        press(&mut app, KeyCode::End);
        assert_eq!(app.selected(), 100);
        press(&mut app, KeyCode::PageDown);
        assert_eq!(app.selected(), 100);
        press(&mut app, KeyCode::Home);
        assert_eq!(app.selected(), 0);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.selected(), 0);
        // A re-sort moves the rows, not the selection off its node.
        for _ in 0..41 {
            press(&mut app, KeyCode::Down);
        }
        press(&mut app, KeyCode::Char('c'));
        assert_eq!(app.rows()[app.selected()].hostname, "worker-41");
        assert_ne!(app.selected(), 41);
        // A new look at the cluster keeps it too.
        app.update(crate::snapshot::fixtures::many(100));
        assert_eq!(app.rows()[app.selected()].hostname, "worker-41");
        let (cpu, memory, tasks) = app.totals();
        assert_eq!(tasks, 301, "three on each worker, one on the manager");
        assert_eq!(memory, (100 * 35 + 42) << 20);
        assert!((cpu - 508.5).abs() < 0.01, "{cpu}");
    }
}
