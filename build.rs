//! Compiles the demo service (demo/quotes.rs, std only) into a static Linux
//! binary that swarmlab carries inside itself, so that `swarmlab image
//! build-demo` needs no compiler on the user's machine: the same rustc that
//! builds swarmlab builds it here, once. Puts in the port forwarder that
//! SWARMLAB_FORWARDER_BINARY names, if any.

use std::env;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/elf.rs"]
mod elf;

fn main() {
    linux_client();
    carried_forwarder();
    println!("cargo:rerun-if-changed=demo/quotes.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("quotes");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // The nodes run Linux on the machine's own architecture.
    let target = env::var("TARGET").unwrap_or_default();
    let target = if target.contains("-linux-") {
        target
    } else {
        "x86_64-unknown-linux-gnu".to_string()
    };
    // A client built as for macOS or Windows (see linux_client) lacks the
    // demo as those do: it gets it from its forwarder's image instead.
    let portable = env::var("SWARMLAB_PORTABLE_CHECK").as_deref() == Ok("1");
    let built = !portable
        && Command::new(rustc)
            .args(["--edition", "2024", "--crate-name", "quotes", "--target", &target])
            .args(["-C", "opt-level=3", "-C", "panic=abort", "-C", "strip=symbols"])
            .args(["-C", "target-feature=+crt-static"])
            .arg("-o")
            .arg(&out)
            .arg("demo/quotes.rs")
            .status()
            .is_ok_and(|status| status.success());
    if !built {
        // A build for a platform whose Linux standard library is not
        // installed: swarmlab works, and build-demo asks the forwarder.
        if !portable {
            println!(
                "cargo:warning=the demo service could not be built for {target}; `swarmlab image build-demo` will get it from the forwarder's image"
            );
        }
        std::fs::write(&out, b"").expect("OUT_DIR is writable");
    }
}

/// Code only a Linux client can run (entering network namespaces) is
/// under `cfg(linux_client)`. `SWARMLAB_PORTABLE_CHECK=1` leaves it out on
/// Linux too, so that CI checks that the rest builds without it, as a macOS
/// or Windows build must: no such standard library can be had here.
fn linux_client() {
    println!("cargo::rustc-check-cfg=cfg(linux_client)");
    println!("cargo:rerun-if-env-changed=SWARMLAB_PORTABLE_CHECK");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && env::var("SWARMLAB_PORTABLE_CHECK").as_deref() != Ok("1") {
        println!("cargo::rustc-cfg=linux_client");
    }
}

/// The port forwarder runs next to the engine, on Linux, as a `FROM
/// scratch` image. A Linux client makes that image of its own executable;
/// a macOS or Windows client carries one: a static Linux build of this same
/// swarmlab, which SWARMLAB_FORWARDER_BINARY names at build time. Its hash
/// tags the image, so that another build gets another one.
fn carried_forwarder() {
    const VAR: &str = "SWARMLAB_FORWARDER_BINARY";
    println!("cargo:rerun-if-env-changed={VAR}");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("forwarder");
    let (contents, architecture) = match env::var_os(VAR).filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = Path::new(&path);
            println!("cargo:rerun-if-changed={}", path.display());
            let contents = std::fs::read(path).unwrap_or_else(|e| panic!("{VAR}: cannot read {}: {e}", path.display()));
            match elf::static_linux_executable(&contents) {
                Ok(architecture) => (contents, architecture),
                Err(why) => panic!(
                    "{VAR}: {} {why}; build it for Linux with `-C target-feature=+crt-static` (gnu) or for musl",
                    path.display()
                ),
            }
        }
        None => (Vec::new(), ""),
    };
    println!("cargo:rustc-env=SWARMLAB_FORWARDER_ARCH={architecture}");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    contents.hash(&mut hasher);
    println!("cargo:rustc-env=SWARMLAB_FORWARDER_ID={:016x}", hasher.finish());
    std::fs::write(&out, contents).expect("OUT_DIR is writable");
}
