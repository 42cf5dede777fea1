//! Drawing `swarmlab top`: a row per node container, or one node's task
//! containers. Reads the app state; changes nothing.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};

use super::app::{App, View, running_tasks};
use crate::snapshot::SnapshotStatus;
use crate::stats::Usage;
use crate::swarm::{ManagerStatus, NodeStatus};

pub(crate) fn draw(frame: &mut Frame, app: &App) {
    let [title, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    frame.render_widget(Paragraph::new(title_line(app)), title);
    match app.open_node() {
        Some(_) => draw_node(frame, body, app),
        None => draw_nodes(frame, body, app),
    }
    let keys = match app.view {
        View::Nodes => "q quit  ↑↓ pgup pgdn home end select  enter open  s sort (n name, c cpu, m memory, t tasks)",
        View::Node(_) => "q quit  esc back",
    };
    frame.render_widget(Paragraph::new(keys).style(Style::new().fg(Color::DarkGray)), footer);
}

fn title_line(app: &App) -> Line<'static> {
    let snapshot = &app.snapshot;
    let mut spans = vec![
        Span::styled(
            " swarmlab top ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(" cluster {}  ", snapshot.cluster)),
    ];
    if snapshot.status == SnapshotStatus::Ok && snapshot.message.is_empty() {
        let ready = snapshot.nodes.iter().filter(|n| n.state == NodeStatus::Ready).count();
        let (cpu, memory, tasks) = app.totals();
        spans.push(Span::raw(format!(
            "{ready}/{} nodes ready  CPU {cpu:.1}%  {}  {tasks} tasks  sorted by {}",
            snapshot.nodes.len(),
            bytes(memory, true),
            app.sort.label()
        )));
    } else {
        spans.push(Span::styled(snapshot.message.clone(), Style::new().fg(Color::Red)));
    }
    Line::from(spans)
}

fn draw_nodes(frame: &mut Frame, area: ratatui::layout::Rect, app: &App) {
    let header = Row::new(["NODE", "ROLE", "STATE", "CPU %", "MEMORY", "NET RX / TX", "TASKS"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.rows().into_iter().map(|node| {
        let (cpu, memory, net) = usage_cells(node.usage);
        let state = if node.state == NodeStatus::Ready {
            node.state.to_string()
        } else {
            format!("{} ({})", node.state, node.container_state)
        };
        let style = if node.state == NodeStatus::Ready {
            Style::new()
        } else {
            Style::new().fg(Color::Red)
        };
        let role = match node.manager_status {
            ManagerStatus::NotManager => node.role.to_string(),
            status => format!("{} ({status})", node.role),
        };
        Row::new([
            node.hostname.clone(),
            role,
            state,
            cpu,
            memory,
            net,
            running_tasks(node).to_string(),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(20),
        Constraint::Length(18),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(20),
        Constraint::Length(5),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(format!(
            " nodes · {} of {} ",
            app.selected() + 1,
            app.snapshot.nodes.len()
        )));
    let mut state = TableState::default().with_selected(Some(app.selected()));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_node(frame: &mut Frame, area: ratatui::layout::Rect, app: &App) {
    let node = app.open_node().expect("a node is open");
    let header =
        Row::new(["TASK", "IMAGE", "STATE", "CPU %", "MEMORY"]).style(Style::new().add_modifier(Modifier::BOLD));
    let rows = node.tasks.iter().map(|task| {
        let (cpu, memory, _) = usage_cells(app.task_usage.get(&task.container).copied());
        let state = if task.lost {
            "lost".to_string()
        } else {
            task.state.clone()
        };
        Row::new([
            format!("{}.{}", task.service, task.slot),
            task.image.clone(),
            state,
            cpu,
            memory,
        ])
    });
    let widths = [
        Constraint::Length(24),
        Constraint::Length(26),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(10),
    ];
    let (cpu, memory, _) = usage_cells(node.usage);
    let title = format!(
        " {} · {} · CPU {cpu}% · {memory} · {} tasks ",
        node.hostname,
        node.state,
        node.tasks.len()
    );
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}

/// CPU, memory and network cells; dashes when there are no figures.
fn usage_cells(usage: Option<Usage>) -> (String, String, String) {
    match usage {
        Some(u) => (
            format!("{:.1}", u.cpu_percent),
            bytes(u.memory_bytes, true),
            format!("{} / {}", bytes(u.net_rx_bytes, false), bytes(u.net_tx_bytes, false)),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    }
}

/// Sizes as the docker CLI prints them: binary units for memory, decimal
/// for network traffic.
pub(crate) fn bytes(value: u64, binary: bool) -> String {
    let (base, units): (f64, [&str; 4]) = if binary {
        (1024.0, ["B", "KiB", "MiB", "GiB"])
    } else {
        (1000.0, ["B", "kB", "MB", "GB"])
    };
    let mut amount = value as f64;
    let mut unit = 0;
    while amount >= base && unit < units.len() - 1 {
        amount /= base;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} {}", units[0])
    } else {
        format!("{amount:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn render(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 12)).unwrap();
        terminal.draw(|frame| draw(frame, app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_node_table() {
        let mut app = App::new("lab");
        app.update(crate::snapshot::fixtures::snapshot());
        insta::assert_snapshot!(render(&app));
    }

    #[test]
    fn a_node_that_went_down_and_a_node_opened() {
        let mut app = App::new("lab");
        let mut snapshot = crate::snapshot::fixtures::snapshot();
        snapshot.nodes[2].state = crate::swarm::NodeStatus::Down;
        snapshot.nodes[2].container_state = "exited".into();
        snapshot.nodes[2].usage = None;
        app.update(snapshot);
        app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE));
        insta::assert_snapshot!("down_sorted_by_cpu", render(&app));
        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        app.task_usage.insert(
            "c-quotes-2".into(),
            Usage {
                cpu_percent: 0.25,
                memory_bytes: 900 << 10,
                ..Default::default()
            },
        );
        insta::assert_snapshot!("node_opened", render(&app));
    }

    #[test]
    fn a_hundred_nodes_scroll_to_the_selection() {
        let mut app = App::new("lab");
        app.update(crate::snapshot::fixtures::many(100));
        app.page = 7;
        for _ in 0..7 {
            app.key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
        }
        insta::assert_snapshot!("a_hundred_nodes_scrolled", render(&app));
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(512, true), "512 B");
        assert_eq!(bytes(35 << 20, true), "35.0 MiB");
        assert_eq!(bytes(1_500_000, false), "1.5 MB");
    }
}
