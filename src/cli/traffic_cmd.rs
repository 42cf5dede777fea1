//! traffic: requests to a published port, counted per replica, live.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use swarmlab::error::{Error, Result};
use swarmlab::input;
use swarmlab::traffic::{self, Summary, TrafficOptions};

use super::output;

#[derive(Args)]
#[command(after_help = "Examples:
  swarmlab traffic                          # GET /api/quote on localhost:8080, 20 a second, until Ctrl-C
  swarmlab traffic --rate 50 --duration 60s
  swarmlab traffic --port 9000 --path /health --json > run.json

Who answered is read from the answer's JSON (`ipAddress` or `hostname`), as
the demo service says it. In another terminal: swarmlab node crash worker-2")]
pub struct TrafficArgs {
    /// Port on 127.0.0.1 (a port the cluster publishes: swarmlab ports)
    #[arg(long, default_value_t = 8080, value_parser = input::port)]
    port: u16,
    /// Path to request
    #[arg(long, default_value = "/api/quote", value_parser = request_path)]
    path: String,
    /// Requests a second, 1 to 1000
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rate: u32,
    /// Stop after this long, e.g. 60s or 5m [default: until Ctrl-C]
    #[arg(long, value_parser = input::duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// Print the summary as JSON on stdout (no live view)
    #[arg(long)]
    json: bool,
}

/// A path that fits in a request line.
fn request_path(text: &str) -> std::result::Result<String, String> {
    if !text.starts_with('/') || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{text:?} is not a request path: it starts with '/' and has no spaces"
        ));
    }
    Ok(text.to_string())
}

pub async fn run(args: TrafficArgs) -> Result<()> {
    let options = TrafficOptions {
        port: args.port,
        path: args.path.clone(),
        rate: args.rate,
        duration: args.duration,
    };
    // Said at once, not after a run of refusals.
    if tokio::net::TcpStream::connect(("127.0.0.1", args.port)).await.is_err() {
        return Err(Error::Other(format!(
            "nothing listens on 127.0.0.1:{}: publish a service's port (docker service create -p {}:PORT ...); `swarmlab ports` lists the published ones",
            args.port, args.port
        )));
    }
    let live = !args.json && std::io::stderr().is_terminal();
    errln!(
        "[  0.00s] GET http://127.0.0.1:{}{} at {} a second{}",
        args.port,
        args.path,
        args.rate,
        if args.duration.is_some() { "" } else { " (Ctrl-C stops)" }
    );
    let quiet = args.json;
    let summary = traffic::run(
        &options,
        // Also when whoever reads its output goes away (`traffic | head`).
        super::signals::stop_requested(),
        |so_far| {
            if live {
                draw_live(so_far);
            } else if !quiet {
                errln!("[{:>6.2}s] {}", so_far.seconds, headline(so_far));
            }
        },
    )
    .await;
    if args.json {
        output::print_json(&summary)?;
    } else {
        outln!("{:.1}s: {}", summary.seconds, headline(&summary));
        outln!("{}", replica_table(&summary));
        if !summary.reasons.is_empty() {
            let reasons: Vec<String> = summary.reasons.iter().map(|(r, n)| format!("{r} ({n})")).collect();
            outln!("failures: {}", reasons.join(", "));
        }
    }
    if summary.requests > 0 && summary.answered == 0 {
        return Err(Error::Other(format!(
            "no request to 127.0.0.1:{} was answered ({}): is the port published? `swarmlab ports` lists them",
            args.port,
            summary.reasons.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

fn headline(s: &Summary) -> String {
    format!(
        "{} requests, {} answered, {} failed, p50 {:.1} ms, p99 {:.1} ms, longest gap {:.2}s, {} replicas",
        s.requests,
        s.answered,
        s.failed,
        s.p50_ms,
        s.p99_ms,
        s.longest_gap,
        s.per_replica.len()
    )
}

fn replica_table(s: &Summary) -> String {
    let rows = s.per_replica.iter().map(|(replica, r)| {
        let share = if s.answered > 0 {
            r.answers as f64 * 100.0 / s.answered as f64
        } else {
            0.0
        };
        vec![
            replica.clone(),
            r.answers.to_string(),
            format!("{share:.1}%"),
            format!("{:.1}s", r.last),
        ]
    });
    output::table(&["REPLICA", "ANSWERS", "SHARE", "LAST ANSWER"], rows)
}

/// The live view on a terminal: redrawn in place once a second.
fn draw_live(s: &Summary) {
    use crossterm::{cursor, terminal};
    let mut err = std::io::stderr();
    let _ = crossterm::execute!(err, cursor::MoveTo(0, 0), terminal::Clear(terminal::ClearType::All));
    let recent: Vec<String> = s
        .failures
        .iter()
        .rev()
        .take(5)
        .map(|f| format!("  {:.1}s {}", f.at, f.reason))
        .collect();
    let _ = writeln!(err, "{:.0}s: {}\n{}", s.seconds, headline(s), replica_table(s));
    if !recent.is_empty() {
        let _ = writeln!(err, "latest failures:\n{}", recent.join("\n"));
    }
}
