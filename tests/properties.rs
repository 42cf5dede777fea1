//! Whatever a user types, parsing answers Ok or a one-line error, never a
//! panic: cluster and node names, durations, counts, ports, forwards and
//! whole cluster files, from random and from nearly-valid inputs.

use proptest::prelude::*;
use swarmlab::config::{ClusterFile, Forward};
use swarmlab::input;
use swarmlab::naming::{ClusterName, NodeName};

/// Inputs per property; 9 properties, so about 18,000 inputs in all.
const CASES: u32 = 2000;

fn one_line(message: &str) -> bool {
    !message.is_empty() && !message.contains('\n')
}

/// Text that looks like what users type: digits, units, names, punctuation.
fn typed() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,25}[a-zµ]{0,4}",
        "[a-z][a-z0-9-]{0,45}",
        "(manager|worker|node)-[0-9]{0,12}",
        "[0-9]{1,6}:[a-z0-9-]{0,12}:[0-9]{0,7}(:[0-9]*)?",
        "[ 0-9a-zA-Z.:_=\"/-]{0,30}",
    ]
}

/// Cluster files: random keys and values in a plausible TOML shape.
fn cluster_file() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("name"),
        Just("managers"),
        Just("workers"),
        Just("image"),
        Just("heartbeat"),
        Just("wait"),
        Just("images"),
        Just("memory"),
        Just("cpus"),
        Just("dockerd_args"),
        Just("labels"),
        Just("host"),
        Just("node"),
        Just("port"),
        Just("flavour"),
    ];
    let value = prop_oneof![
        "-?[0-9]{1,22}(\\.[0-9]{1,3})?".prop_map(|n| n),
        typed().prop_map(|s| format!("{s:?}")),
        "[a-z0-9\"., -]{0,20}".prop_map(|s| format!("[{s}]")),
        Just("{ disk = \"ssd\" }".to_string()),
        Just("true".to_string()),
    ];
    let table = prop_oneof![
        Just(""),
        Just("[defaults]"),
        Just("[role.manager]"),
        Just("[role.worker]"),
        Just("[nodes.worker-1]"),
        Just("[nodes.\"manager-2\"]"),
        Just("[[ports]]"),
        Just("[nodes]"),
        Just("[role]"),
    ];
    proptest::collection::vec((table, proptest::collection::vec((key, value), 0..4)), 0..5).prop_map(|sections| {
        sections
            .into_iter()
            .map(|(table, pairs)| {
                let body: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{table}\n{}\n", body.join("\n"))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn cluster_names(text in typed()) {
        if let Err(e) = ClusterName::new(&text) {
            prop_assert!(one_line(&e.to_string()));
        }
    }

    #[test]
    fn node_names(text in typed()) {
        if let Err(e) = text.parse::<NodeName>() {
            prop_assert!(one_line(&e.to_string()));
        }
    }

    #[test]
    fn durations(text in typed()) {
        match input::duration(&text) {
            Ok(d) => prop_assert!(d <= input::MAX_DURATION),
            Err(e) => prop_assert!(one_line(&e)),
        }
    }

    #[test]
    fn intervals(text in typed()) {
        match input::interval(&text) {
            Ok(d) => prop_assert!(d >= input::MIN_INTERVAL && d <= input::MAX_DURATION),
            Err(e) => prop_assert!(one_line(&e)),
        }
    }

    #[test]
    fn counts(text in typed()) {
        match input::count(&text) {
            Ok(n) => prop_assert!(n <= input::MAX_COUNT),
            Err(e) => prop_assert!(one_line(&e)),
        }
    }

    #[test]
    fn ports(text in typed()) {
        match input::port(&text) {
            Ok(p) => prop_assert!(p > 0),
            Err(e) => prop_assert!(one_line(&e)),
        }
    }

    #[test]
    fn forwards(text in typed()) {
        if let Err(e) = Forward::from_arg(&text) {
            prop_assert!(one_line(&e.to_string()));
        }
    }

    #[test]
    fn cluster_files_of_any_text(text in any::<String>()) {
        if let Err(e) = ClusterFile::parse(&text) {
            prop_assert!(one_line(&e), "{e}");
        }
    }

    #[test]
    fn cluster_files_of_plausible_shape(text in cluster_file()) {
        if let Err(e) = ClusterFile::parse(&text) {
            prop_assert!(one_line(&e), "{e}");
            let position: Vec<&str> = e.splitn(3, ':').take(2).collect();
            prop_assert!(position.iter().all(|p| p.parse::<usize>().is_ok_and(|n| n >= 1)), "{e}");
        }
    }
}
