//! Kernel limits of the host against a cluster's size. The test lowers a
//! setting of the whole machine for a moment, so it runs alone.

use crate::support::{Test, TestCluster};

const INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// Puts the machine's setting back however the test ends.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(INSTANCES, &self.0);
    }
}

fn instances_in_use() -> u64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read_dir(p.path().join("fd")).ok())
        .flat_map(|fds| fds.flatten())
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:inotify"))
        .count() as u64
}

#[test]
#[ignore = "lowers a kernel setting of the whole machine: scripts/test runs it alone"]
fn too_few_inotify_instances_are_raised_by_root_and_said() {
    let original = std::fs::read_to_string(INSTANCES).unwrap();
    let _restore = Restore(original.clone());
    let low = instances_in_use() + 8;
    std::fs::write(INSTANCES, low.to_string()).unwrap();
    let output = Test::new()
        .args(["create", "--name", &crate::support::unique("inotify"), "--workers", "3"])
        .stderr_has(&format!("raised fs.inotify.max_user_instances from {low} to"))
        .stdout_has("is ready in")
        .run();
    let cluster = TestCluster::adopt(&crate::support::unique("inotify"));
    let now: u64 = std::fs::read_to_string(INSTANCES).unwrap().trim().parse().unwrap();
    assert!(now > low + 4, "room for 4 nodes: {now}");
    drop(output);
    cluster.delete();
}
