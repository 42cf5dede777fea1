//! Tables and JSON for listings.

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
    println!("{text}");
    Ok(())
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
