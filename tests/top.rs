//! `swarmlab top` in a real terminal: tmux runs it in a shell, the test
//! reads the screen and types keys.

use std::process::Command;
use std::time::Duration;

use crate::support::{TestCluster, deploy, home, within};

/// A private tmux server, killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16) -> Self {
        let tmux = Tmux {
            socket: format!("swarmlab-test-{}", std::process::id()),
        };
        let status = Command::new("tmux")
            .args(["-L", &tmux.socket, "new-session", "-d", "-s", "top"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["-e", &format!("SWARMLAB_HOME={}", home().display())])
            .args(["-e", "DOCKER_HOST=", "-e", "SWARMLAB_DOCKER_HOST="])
            .arg("sh")
            .status()
            .expect("tmux runs (scripts/setup installs it)");
        assert!(status.success());
        tmux
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "top"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn shows(&self, text: &str) -> bool {
        within(Duration::from_secs(15), || self.screen().contains(text)).is_some()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

#[test]
fn top_runs_in_a_real_terminal_and_leaves_it_as_it_was() {
    let cluster = TestCluster::create("top", &["--workers", "1"]);
    deploy(&cluster, "quotes", 2, &[]);
    let tmux = Tmux::start(110, 24);
    let command = format!(
        "{} top --name {}; echo top-exited-$?",
        env!("CARGO_BIN_EXE_swarmlab"),
        cluster.name
    );
    tmux.keys(&[&command, "Enter"]);

    assert!(tmux.shows("swarmlab top"), "the view appears:\n{}", tmux.screen());
    assert!(tmux.shows("manager-1"), "{}", tmux.screen());
    assert!(tmux.shows("MiB"), "memory figures appear:\n{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        screen.contains("worker-1") && screen.contains("NET RX / TX"),
        "{screen}"
    );

    tmux.keys(&["c"]);
    assert!(tmux.shows("sorted by cpu"), "{}", tmux.screen());
    tmux.keys(&["Enter"]);
    assert!(
        tmux.shows("TASK"),
        "a node opens on its task containers:\n{}",
        tmux.screen()
    );
    assert!(tmux.shows("quotes."), "{}", tmux.screen());
    tmux.keys(&["Escape"]);
    assert!(tmux.shows("NET RX / TX"), "{}", tmux.screen());

    tmux.keys(&["q"]);
    assert!(tmux.shows("top-exited-0"), "q quits cleanly:\n{}", tmux.screen());
    assert!(!tmux.screen().contains("NET RX / TX"), "the alternate screen is gone");
    assert_cooked(&tmux);

    // A panic leaves the terminal as it was too, and says so on one line.
    tmux.keys(&["clear", "Enter"]);
    let faulty = format!("SWARMLAB_TOP_FAULT=panic {command}");
    tmux.keys(&[&faulty, "Enter"]);
    assert!(tmux.shows("top-exited-101"), "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(screen.contains("swarmlab: internal error"), "{screen}");
    assert!(
        !screen.contains("NET RX / TX"),
        "the alternate screen is gone:\n{screen}"
    );
    assert_cooked(&tmux);
}

fn assert_cooked(tmux: &Tmux) {
    tmux.keys(&["stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon", "Enter"]);
    let cooked = within(Duration::from_secs(5), || {
        tmux.screen().lines().any(|l| l.trim() == "icanon")
    });
    assert!(
        cooked.is_some(),
        "the terminal is back in canonical (cooked) mode:\n{}",
        tmux.screen()
    );
}
