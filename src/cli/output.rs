//! Tables and JSON for listings, and the one way the CLI writes lines.

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets::NOTHING};
use serde::Serialize;
use swarmlab::error::{Error, Result};

/// A table in the docker CLI's style: upper-case headers, columns apart.
pub fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Other(format!("cannot write JSON: {e}")))?;
    outln!("{text}");
    Ok(())
}

/// Where a line goes.
#[derive(Clone, Copy)]
pub enum Stream {
    Out,
    Err,
}

/// Writes one line. A stream that cannot be written any more (its reader
/// went away) is not an error of the command: the line is dropped and the
/// long-running commands are told to stop, like when the terminal hangs up.
pub fn write_line(stream: Stream, args: std::fmt::Arguments) {
    let written = match stream {
        Stream::Out => writeln!(std::io::stdout().lock(), "{args}"),
        Stream::Err => writeln!(std::io::stderr().lock(), "{args}"),
    };
    // Other failures (a full disk under `2>log`) lose the line, not the work.
    if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        super::signals::output_gone();
    }
}

/// Writes `bytes` to stdout; a reader that went away is no error.
pub fn write_all(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

pub fn secs(duration: std::time::Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Quotes a value for a POSIX shell.
pub fn shell_quote(value: &str) -> String {
    if value.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c)) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a POSIX shell makes of `text` as one word (sh -c 'printf %s WORD').
    fn through_sh(word: &str) -> String {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn plain_values_stay_as_they_are() {
        assert_eq!(shell_quote("tcp://127.0.0.1:2376"), "tcp://127.0.0.1:2376");
        assert_eq!(
            shell_quote("/root/.local/share/swarmlab"),
            "/root/.local/share/swarmlab"
        );
    }

    #[test]
    fn anything_else_reaches_the_shell_unchanged() {
        for value in [
            "/home/a b/swarmlab",
            "it's",
            "$(rm -rf /)",
            "`id`",
            "a;b&&c|d",
            "\"quoted\"",
            "tab\there",
            "",
        ] {
            let quoted = shell_quote(value);
            assert_eq!(through_sh(&quoted), value, "{value:?} quoted as {quoted}");
        }
    }

    #[test]
    fn tables_look_like_the_docker_clis() {
        let text = table(&["name", "status"], [vec!["lab".into(), "running".into()]]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME") && lines[0].contains("STATUS"));
        assert!(lines[1].starts_with("lab") && lines[1].ends_with("running"));
        assert_eq!(secs(std::time::Duration::from_millis(1250)), "1.2s");
    }
}
