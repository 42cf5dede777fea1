//! What an engine says of itself (`docker info`) that changes how nodes are
//! made and reached: rootless, without cgroups, on this very machine.

/// What the engine says of itself that changes how nodes are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EngineFacts {
    /// It runs in a user namespace (rootless): --privileged is granted
    /// within it, whatever this machine's capability bounding set says.
    pub(crate) rootless: bool,
    /// It makes no cgroups for its containers (cgroup driver "none").
    pub(crate) no_cgroups: bool,
    /// It runs on this machine: see [`super::HostEngine::is_local`].
    pub(crate) here: bool,
    /// Its machine as `docker info` names it (x86_64, aarch64), empty for
    /// any other: what a carried forwarder must be built for.
    pub(crate) architecture: &'static str,
}

impl EngineFacts {
    /// Whether the nodes' own engines must run rootless too, without
    /// cgroups: a rootless engine that has none to give (cgroup v1, or v2
    /// without a delegated systemd slice) leaves its containers none, so no
    /// container a node starts could make its own.
    pub(crate) fn nodes_rootless(&self) -> bool {
        self.rootless && self.no_cgroups
    }

    pub(super) fn from_info(info: &bollard::models::SystemInfo) -> Self {
        EngineFacts {
            rootless: info
                .security_options
                .iter()
                .flatten()
                .any(|option| option.split(',').any(|part| part == "name=rootless")),
            no_cgroups: info.cgroup_driver == Some(bollard::models::SystemInfoCgroupDriverEnum::NONE),
            here: same_machine(info, &this_machine()),
            architecture: match info.architecture.as_deref() {
                Some("x86_64") => "x86_64",
                Some("aarch64") => "aarch64",
                _ => "",
            },
        }
    }
}

/// What tells one machine from another in `docker info`: its hostname,
/// kernel release and memory (hostname and kernel alone match a cloned VM,
/// or one of the same distribution named `debian`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Machine {
    name: String,
    kernel: String,
    memory: i64,
}

/// This machine, as an engine on it describes it; none where the client is
/// not Linux (no engine runs on its kernel: Docker Desktop's is in a VM).
fn this_machine() -> Option<Machine> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let read = |path: &str| std::fs::read_to_string(path).ok().map(|s| s.trim().to_string());
    let kib: i64 = read("/proc/meminfo")?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(Machine {
        name: read("/proc/sys/kernel/hostname")?,
        kernel: read("/proc/sys/kernel/osrelease")?,
        memory: kib * 1024,
    })
}

/// Whether the engine whose `docker info` says `info` runs on the machine
/// `here`. The address says nothing: a tcp://127.0.0.1 port may be
/// forwarded into a VM, and Docker Desktop's unix socket leads into one.
fn same_machine(info: &bollard::models::SystemInfo, here: &Option<Machine>) -> bool {
    here.as_ref().is_some_and(|here| {
        info.name.as_deref() == Some(here.name.as_str())
            && info.kernel_version.as_deref() == Some(here.kernel.as_str())
            && info.mem_total == Some(here.memory)
    })
}

#[cfg(test)]
mod tests {
    use bollard::models::{SystemInfo, SystemInfoCgroupDriverEnum};

    use super::{EngineFacts, Machine, same_machine, this_machine};

    #[test]
    fn a_rootless_engine_without_cgroups_makes_rootless_nodes() {
        let info = |options: &[&str], driver| SystemInfo {
            security_options: Some(options.iter().map(|o| o.to_string()).collect()),
            cgroup_driver: Some(driver),
            ..Default::default()
        };
        let without = EngineFacts::from_info(&info(
            &["name=seccomp,profile=default", "name=rootless"],
            SystemInfoCgroupDriverEnum::NONE,
        ));
        assert_eq!(
            without,
            EngineFacts {
                rootless: true,
                no_cgroups: true,
                here: false,
                architecture: "",
            }
        );
        assert!(without.nodes_rootless());
        let delegated = EngineFacts::from_info(&info(&["name=rootless"], SystemInfoCgroupDriverEnum::SYSTEMD));
        assert!(delegated.rootless && !delegated.nodes_rootless());
        let rootful = EngineFacts::from_info(&info(
            &["name=apparmor", "name=seccomp,profile=default"],
            SystemInfoCgroupDriverEnum::CGROUPFS,
        ));
        assert!(!rootful.rootless && !rootful.nodes_rootless());
        assert_eq!(EngineFacts::from_info(&SystemInfo::default()), EngineFacts::default());
    }

    #[test]
    fn an_engine_is_here_only_under_this_hostname_on_this_kernel_with_this_memory() {
        let here = Some(Machine {
            name: "vm".into(),
            kernel: "6.18.44".into(),
            memory: 8 << 30,
        });
        let info = |name: &str, kernel: &str, memory: i64| SystemInfo {
            name: Some(name.into()),
            kernel_version: Some(kernel.into()),
            mem_total: Some(memory),
            ..Default::default()
        };
        assert!(same_machine(&info("vm", "6.18.44", 8 << 30), &here));
        // A guest forwarded to 127.0.0.1, Docker Desktop's VM, a clone.
        assert!(!same_machine(&info("guest", "6.1.0-40-amd64", 8 << 30), &here));
        assert!(!same_machine(&info("docker-desktop", "6.18.44", 8 << 30), &here));
        assert!(!same_machine(&info("vm", "6.1.0", 8 << 30), &here));
        assert!(!same_machine(&info("vm", "6.18.44", 4 << 30), &here));
        assert!(!same_machine(&SystemInfo::default(), &here));
        // A client that is not Linux has no engine on its kernel.
        assert!(!same_machine(&info("vm", "6.18.44", 8 << 30), &None));
        assert!(this_machine().is_some_and(|m| m.memory > 0));
    }
}
