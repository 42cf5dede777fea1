//! The pure part of a rolling upgrade: in which order the nodes go, and
//! which step would cost the managers their quorum.

use crate::naming::{NodeName, Role};
use crate::swarm::ManagerStatus;

/// A node as the upgrade's order and quorum rule see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) hostname: String,
    pub(crate) role: Role,
    pub(crate) status: ManagerStatus,
}

/// The order to upgrade `targets` in: managers first, by name, the leader
/// last of them (leadership moves once, not at every step), then workers.
pub(crate) fn order(targets: &[String], members: &[Member]) -> Vec<String> {
    let mut chosen: Vec<&Member> = members.iter().filter(|m| targets.contains(&m.hostname)).collect();
    chosen.sort_by_key(|m| {
        let rank = match (m.role, m.status) {
            (Role::Manager, ManagerStatus::Leader) => 1,
            (Role::Manager, _) => 0,
            (Role::Worker, _) => 2,
        };
        (
            rank,
            m.hostname.parse::<NodeName>().map(|n| n.index).unwrap_or(u32::MAX),
            m.hostname.clone(),
        )
    });
    chosen.into_iter().map(|m| m.hostname.clone()).collect()
}

/// Why taking `hostname` down now would lose the managers' quorum, if it
/// would. A single manager may go: its swarm has no quorum to lose, only a
/// moment without a control plane.
pub(crate) fn quorum_refusal(hostname: &str, members: &[Member]) -> Option<String> {
    let managers: Vec<&Member> = members.iter().filter(|m| m.role == Role::Manager).collect();
    let this = managers.iter().find(|m| m.hostname == hostname)?;
    if managers.len() == 1 {
        return None;
    }
    let reachable = |m: &&&Member| matches!(m.status, ManagerStatus::Leader | ManagerStatus::Reachable);
    let up = managers.iter().filter(reachable).count();
    let left = up - usize::from(reachable(&this));
    let quorum = managers.len() / 2 + 1;
    (left < quorum).then(|| {
        format!(
            "upgrading {hostname} now would lose quorum: {up} of {} managers are reachable and a swarm of {} needs {quorum}; bring the others back first (swarmlab node start NODE)",
            managers.len(),
            managers.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(hostname: &str, status: ManagerStatus) -> Member {
        Member {
            hostname: hostname.into(),
            role: if status == ManagerStatus::NotManager {
                Role::Worker
            } else {
                Role::Manager
            },
            status,
        }
    }

    fn swarm_3_2() -> Vec<Member> {
        vec![
            member("worker-2", ManagerStatus::NotManager),
            member("manager-1", ManagerStatus::Leader),
            member("worker-1", ManagerStatus::NotManager),
            member("manager-3", ManagerStatus::Reachable),
            member("manager-2", ManagerStatus::Reachable),
        ]
    }

    #[test]
    fn managers_go_first_one_at_a_time_the_leader_last_then_workers() {
        let all: Vec<String> = swarm_3_2().iter().map(|m| m.hostname.clone()).collect();
        assert_eq!(
            order(&all, &swarm_3_2()),
            ["manager-2", "manager-3", "manager-1", "worker-1", "worker-2"]
        );
        assert_eq!(
            order(&["worker-1".into(), "manager-1".into()], &swarm_3_2()),
            ["manager-1", "worker-1"]
        );
        let mut many: Vec<Member> = (1..=11)
            .map(|i| member(&format!("worker-{i}"), ManagerStatus::NotManager))
            .collect();
        many.push(member("manager-1", ManagerStatus::Leader));
        let names: Vec<String> = many.iter().map(|m| m.hostname.clone()).collect();
        assert_eq!(
            order(&names, &many)[..3],
            ["manager-1", "worker-1", "worker-2"],
            "by index, not by text"
        );
    }

    #[test]
    fn a_step_that_would_lose_quorum_is_refused() {
        let healthy = swarm_3_2();
        assert_eq!(quorum_refusal("manager-2", &healthy), None);
        assert_eq!(quorum_refusal("worker-1", &healthy), None);
        let mut one_down = healthy.clone();
        one_down[3].status = ManagerStatus::Unreachable;
        let refused = quorum_refusal("manager-2", &one_down).unwrap();
        assert!(
            refused.contains("2 of 3 managers are reachable") && refused.contains("needs 2"),
            "{refused}"
        );
        // Upgrading the one that is down already costs nothing more.
        assert_eq!(quorum_refusal("manager-3", &one_down), None);
        let single = vec![
            member("manager-1", ManagerStatus::Leader),
            member("worker-1", ManagerStatus::NotManager),
        ];
        assert_eq!(quorum_refusal("manager-1", &single), None, "a single manager may go");
    }
}
