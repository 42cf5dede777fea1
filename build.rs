//! Compiles the demo service (demo/quotes.rs, std only) into a static Linux
//! binary that swarmlab carries inside itself, so that `swarmlab image
//! build-demo` needs no compiler on the user's machine: the same rustc that
//! builds swarmlab builds it here, once.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    linux_client();
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
    let built = Command::new(rustc)
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
        // installed: swarmlab works, and build-demo says what it lacks.
        println!(
            "cargo:warning=the demo service could not be built for {target}; `swarmlab image build-demo` will say so"
        );
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
