//! Facts about, and helpers for, the machine swarmlab itself runs on.

use std::path::{Path, PathBuf};

use crate::error::{Context, Result};

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A fresh directory of this process's own, removed when dropped. Made as
/// mkdtemp(3) does: an unpredictable name, created (never reused when it
/// exists) with mode 0700, so that nobody else on the machine can have
/// prepared it or look into it while a build runs as root.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// In SWARMLAB_BUILD_DIR, else /var/tmp (root file systems do not fit
    /// in a small /tmp).
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let base = std::env::var_os("SWARMLAB_BUILD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp"));
        Self::new_in(&base, prefix)
    }

    fn new_in(base: &Path, prefix: &str) -> Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        let mut attempts = 0;
        loop {
            let dir = base.join(format!("{prefix}-{}", random_suffix()));
            match builder.create(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => attempts += 1,
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

/// 16 hex digits no other process can guess: std's hasher keys are random
/// per process, and the clock and process ID go in too.
pub(crate) fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    format!("{:016x}", hasher.finish())
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_directories_are_fresh_private_and_gone_after_use() {
        let base = std::env::temp_dir().join(format!("swarmlab-tempdir-test-{}", random_suffix()));
        std::fs::create_dir(&base).unwrap();
        let made: Vec<PathBuf> = (0..20)
            .map(|_| {
                let dir = TempDir::new_in(&base, "t").unwrap();
                let path = dir.path().to_path_buf();
                std::mem::forget(dir);
                path
            })
            .collect();
        let distinct: std::collections::BTreeSet<_> = made.iter().collect();
        assert_eq!(distinct.len(), made.len(), "every directory is new");
        for path in &made {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o700, "{}", path.display());
            }
        }
        let dir = TempDir::new_in(&base, "t").unwrap();
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "removed when dropped");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
