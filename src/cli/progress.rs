//! Progress on the terminal: a live line per node with its step and elapsed
//! time when stderr is a terminal, plain timestamped lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use swarmlab::progress::Progress;

pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() && std::env::var_os("SWARMLAB_PLAIN").is_none() {
        Box::new(Live::new())
    } else {
        Box::new(Plain {
            started: Instant::now(),
        })
    }
}

/// One log line per event, for logs and CI.
struct Plain {
    started: Instant,
}

impl Plain {
    fn line(&self, text: &str) {
        errln!("[{:>6.2}s] {text}", self.started.elapsed().as_secs_f64());
    }
}

impl Progress for Plain {
    fn step(&self, node: &str, step: &str) {
        self.line(&format!("{node}: {step}"));
    }
    fn done(&self, node: &str, summary: &str) {
        self.line(&format!("{node}: {summary}"));
    }
    fn note(&self, message: &str) {
        self.line(message);
    }
}

/// A spinner per node that shows its current step and how long it has run.
struct Live {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Live {
    fn new() -> Self {
        Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, node: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("progress lock");
        bars.entry(node.to_string())
            .or_insert_with(|| {
                let style = with_seconds("{spinner:.cyan} {prefix:<12.bold} {wide_msg} {secs:>7}");
                let bar = self.multi.add(ProgressBar::new_spinner().with_style(style));
                bar.set_prefix(node.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            })
            .clone()
    }
}

impl Progress for Live {
    fn step(&self, node: &str, step: &str) {
        self.bar(node).set_message(step.to_string());
    }
    fn done(&self, node: &str, summary: &str) {
        let bar = self.bar(node);
        let style = with_seconds("{prefix:.green} {wide_msg} {secs:>7}");
        bar.set_style(style);
        bar.set_prefix(format!("✓ {node:<10}"));
        bar.finish_with_message(summary.to_string());
    }
    fn note(&self, message: &str) {
        let _ = self.multi.println(message);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // Leave finished lines on screen; clear spinners of unfinished work.
        for bar in self.bars.lock().expect("progress lock").values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// A style whose `{secs}` key shows the elapsed time with a decimal.
fn with_seconds(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .with_key(
            "secs",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
            },
        )
}
