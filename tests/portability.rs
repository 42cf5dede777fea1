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

#[path = "../build/elf.rs"]
mod elf;

/// The start of a 64-bit little-endian ELF file whose program headers
/// (right after it) have these types.
fn elf_with(kinds: &[u32]) -> Vec<u8> {
    let mut file = vec![0u8; 64];
    file[..6].copy_from_slice(b"\x7fELF\x02\x01");
    file[0x10..0x12].copy_from_slice(&3u16.to_le_bytes());
    file[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
    file[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    file[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    file[0x38..0x3a].copy_from_slice(&(kinds.len() as u16).to_le_bytes());
    for kind in kinds {
        let mut header = vec![0u8; 56];
        header[..4].copy_from_slice(&kind.to_le_bytes());
        file.extend(header);
    }
    file
}

#[test]
fn a_carried_forwarder_must_be_a_static_linux_executable() {
    const LOAD: u32 = 1;
    const INTERP: u32 = 3;
    assert_eq!(elf::static_linux_executable(&elf_with(&[LOAD, LOAD])), Ok("x86_64"));
    let mut arm = elf_with(&[LOAD]);
    arm[0x12] = 183;
    assert_eq!(elf::static_linux_executable(&arm), Ok("aarch64"));
    let mut riscv = elf_with(&[LOAD]);
    riscv[0x12] = 243;
    assert!(elf::static_linux_executable(&riscv).is_err_and(|why| why.contains("other than")));
    let mut object = elf_with(&[LOAD]);
    object[0x10] = 1;
    assert!(elf::static_linux_executable(&object).is_err_and(|why| why.contains("not an executable")));
    assert!(elf::static_linux_executable(&elf_with(&[LOAD, INTERP])).is_err_and(|why| why.contains("dynamically")));
    assert!(elf::static_linux_executable(b"#!/bin/sh\n").is_err_and(|why| why.contains("not a 64-bit")));
    let cut = &elf_with(&[LOAD])[..80];
    assert!(elf::static_linux_executable(cut).is_err_and(|why| why.contains("too short")));
    // This test, as cargo builds it by default, names a loader.
    if !cfg!(target_feature = "crt-static") {
        let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(elf::static_linux_executable(&own).is_err());
    }
}
