//! The proxy settings the docker CLI gives the containers it runs, from the
//! `proxies` of its config.json: those written for the engine's address,
//! else the default ones (as `docker run` picks them, not merged). The
//! short-lived containers swarmlab runs on the engine (a node image's
//! builder) fetch through the same proxies as the user's own would.

use std::path::Path;

/// config.json's names and the variables each becomes, in both cases as
/// the docker CLI sets them.
const SETTINGS: &[(&str, &str)] = &[
    ("httpProxy", "HTTP_PROXY"),
    ("httpsProxy", "HTTPS_PROXY"),
    ("ftpProxy", "FTP_PROXY"),
    ("noProxy", "NO_PROXY"),
    ("allProxy", "ALL_PROXY"),
];

/// `NAME=value` lines for a container on the engine at `host`, from the
/// docker config folder `config`; none when it says nothing.
pub(crate) fn container_env(config: Option<&Path>, host: &str) -> Vec<String> {
    let Some(text) = config.and_then(|dir| std::fs::read_to_string(dir.join("config.json")).ok()) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let proxies = &json["proxies"];
    let chosen = if proxies[host].is_object() {
        &proxies[host]
    } else {
        &proxies["default"]
    };
    SETTINGS
        .iter()
        .filter_map(|(key, var)| chosen[key].as_str().filter(|v| !v.is_empty()).map(|v| (var, v)))
        .flat_map(|(var, value)| [format!("{var}={value}"), format!("{}={value}", var.to_lowercase())])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> crate::host::TempDir {
        let dir = crate::host::TempDir::new("swarmlab-proxies-test").unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    #[test]
    fn the_engines_own_proxies_over_the_default_ones_in_both_cases() {
        let dir = config(
            r#"{"proxies": {
                "default": {"httpProxy": "http://proxy:3128", "noProxy": "localhost"},
                "tcp://far:2376": {"httpsProxy": "http://other:3128"}
            }}"#,
        );
        assert_eq!(
            container_env(Some(dir.path()), "unix:///var/run/docker.sock"),
            [
                "HTTP_PROXY=http://proxy:3128",
                "http_proxy=http://proxy:3128",
                "NO_PROXY=localhost",
                "no_proxy=localhost"
            ]
        );
        assert_eq!(
            container_env(Some(dir.path()), "tcp://far:2376"),
            ["HTTPS_PROXY=http://other:3128", "https_proxy=http://other:3128"]
        );
    }

    #[test]
    fn no_config_or_no_proxies_gives_nothing() {
        assert!(container_env(None, "unix:///var/run/docker.sock").is_empty());
        let dir = config(r#"{"currentContext": "x"}"#);
        assert!(container_env(Some(dir.path()), "unix:///var/run/docker.sock").is_empty());
        let dir = config("not json");
        assert!(container_env(Some(dir.path()), "unix:///var/run/docker.sock").is_empty());
    }
}
