//! The client builds for macOS and Windows too: scripts/test checks the
//! crate with its Linux-only parts left out (`SWARMLAB_PORTABLE_CHECK=1`),
//! and this test keeps Unix- and Linux-only interfaces under their gates,
//! which that check, run on Linux, cannot see.

use std::path::{Path, PathBuf};

/// Interfaces a Windows (or macOS) build does not have, and the gates that
/// make them fine.
const GUARDED: &[(&str, &[&str])] = &[
    ("std::os::unix", &["#[cfg(unix)]", "#[cfg(linux_client)]"]),
    ("signal::unix", &["#[cfg(unix)]", "#[cfg(linux_client)]"]),
    ("libc::", &["#[cfg(unix)]", "#[cfg(linux_client)]"]),
    ("setns", &["#[cfg(linux_client)]"]),
];
/// Files compiled only under a gate on their `mod` line.
const GATED_FILES: &[(&str, &str)] = &[("src/ports/netns.rs", "#[cfg(linux_client)]\nmod netns;")];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn unix_and_linux_interfaces_stay_under_their_gates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ports = std::fs::read_to_string(root.join("src/ports/mod.rs")).unwrap();
    for (file, gate) in GATED_FILES {
        assert!(ports.contains(gate), "{file} is compiled only with `{gate}`");
    }
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let mut ungated = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if GATED_FILES.iter().any(|(gated, _)| *gated == relative) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (interface, gates) in GUARDED {
                if !code.contains(interface) {
                    continue;
                }
                // The gate stands on the item or block that holds the line:
                // within the few lines above it.
                let above = &lines[n.saturating_sub(8)..n];
                if !above.iter().any(|l| gates.iter().any(|g| l.trim() == *g)) {
                    ungated.push(format!("{relative}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        ungated.is_empty(),
        "Unix- or Linux-only interfaces outside a cfg gate:\n{}",
        ungated.join("\n")
    );
}
