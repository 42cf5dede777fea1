//! Cluster files as text: where a key is written (for errors that name a
//! line and column), and durations and sizes as people write them.

/// 1-based line and column of a byte offset.
pub(super) fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

/// Where a key (`workers`), a table (`nodes.worker-1`) or a key in a
/// table (`role.worker.dockerd_args`) is written, for errors found after
/// parsing; the table when the key is not found in it, the start of the
/// file when neither is.
pub(super) fn key_position(text: &str, key: &str) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let at = |index: usize| {
        let line = lines[index];
        (index + 1, line.len() - line.trim_start().len() + 1)
    };
    let is_key = |line: &str, name: &str| {
        let line = line.trim_start();
        line.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let header = |line: &str| -> Option<String> {
        let line = line.trim();
        let inner = line.strip_prefix('[')?.trim_start_matches('[');
        let inner = inner.split(']').next()?;
        Some(
            inner
                .split('.')
                .map(|part| part.trim().trim_matches('"'))
                .collect::<Vec<_>>()
                .join("."),
        )
    };
    // The innermost table named by a prefix of the key, and the key's own
    // line inside it.
    let parts: Vec<&str> = key.split('.').collect();
    for split in (1..=parts.len()).rev() {
        let (table, rest) = (parts[..split].join("."), parts[split..].join("."));
        let Some(start) = lines
            .iter()
            .position(|line| header(line).as_deref() == Some(table.as_str()))
        else {
            continue;
        };
        if !rest.is_empty() {
            let inside = lines[start + 1..].iter().take_while(|line| header(line).is_none());
            if let Some(offset) = inside.into_iter().position(|line| is_key(line, &rest)) {
                return at(start + 1 + offset);
            }
        }
        return at(start);
    }
    // A top-level key, before any table.
    let top = lines.iter().take_while(|line| header(line).is_none());
    match top.into_iter().position(|line| is_key(line, key)) {
        Some(index) => at(index),
        None => (1, 1),
    }
}

/// Durations written as text: "1s", "500ms", "2m".
pub(super) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::input::duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// Sizes written as text ("512MiB", "1g", "1.5GB") or as a number of bytes.
pub(super) mod byte_size {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Bytes(u64),
        Text(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        match Written::deserialize(deserializer)? {
            Written::Bytes(bytes) => Ok(Some(bytes)),
            Written::Text(text) => super::parse_size(&text).map(Some).map_err(serde::de::Error::custom),
        }
    }

    pub(crate) fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_u64(*bytes),
            None => serializer.serialize_none(),
        }
    }
}

/// Parses "512MiB", "512m", "1.5GB", "1g", "1048576".
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a size such as \"512MiB\" or \"1g\", got {text:?}"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use B, KiB, MiB, GiB (or k, m, g)"
            ));
        }
    };
    Ok((number * factor) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_inside_tables() {
        let text = "workers = 2\n[defaults]\nworkers_x = 1\n[nodes.\"worker-1\"]\ncpus = 1\n[role.worker]\ncpus = 2\n";
        assert_eq!(key_position(text, "workers"), (1, 1));
        assert_eq!(key_position(text, "nodes.worker-1"), (4, 1));
        assert_eq!(key_position(text, "role.worker.cpus"), (7, 1));
        assert_eq!(key_position(text, "nodes.worker-1.cpus"), (5, 1));
        assert_eq!(
            key_position(text, "role.worker.memory"),
            (6, 1),
            "the table when the key is not in it"
        );
        assert_eq!(key_position(text, "nowhere"), (1, 1));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1_000_000_000));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12 parsecs").unwrap_err().contains("unknown size unit"));
    }
}
