use std::collections::HashMap;

use super::*;

struct Store(PathBuf);

impl Store {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("swarmlab-contexts-{}", crate::host::random_suffix()));
        std::fs::create_dir_all(dir.join("contexts/meta")).unwrap();
        Store(dir)
    }

    fn context(&self, folder: &str, name: &str, host: &str, description: &str, tls: bool) {
        let meta = self.0.join("contexts/meta").join(folder);
        std::fs::create_dir_all(&meta).unwrap();
        let json = serde_json::json!({
            "Name": name,
            "Metadata": {"Description": description},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}
        });
        std::fs::write(meta.join("meta.json"), json.to_string()).unwrap();
        if tls {
            let dir = self.0.join("contexts/tls").join(folder).join("docker");
            std::fs::create_dir_all(&dir).unwrap();
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::write(dir.join(file), "pem").unwrap();
            }
        }
    }

    fn current(&self, name: &str) {
        std::fs::write(
            self.0.join("config.json"),
            format!("{{\"currentContext\": \"{name}\"}}"),
        )
        .unwrap();
    }

    fn resolve(&self, vars: &[(&str, &str)]) -> Result<Endpoint> {
        let mut vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        vars.insert("DOCKER_CONFIG".into(), self.0.display().to_string());
        resolve(&|name| vars.get(name).cloned(), None)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn nothing_said_is_the_local_socket() {
    let store = Store::new();
    let endpoint = store.resolve(&[]).unwrap();
    assert_eq!(endpoint, default());
    assert_eq!(resolve(&|_| None, None).unwrap().source, Source::Default);
}

#[test]
fn the_current_context_with_its_tls_files() {
    let store = Store::new();
    store.context("f00d", "desktop-linux", "tcp://127.0.0.1:2376", "", true);
    store.current("desktop-linux");
    let endpoint = store.resolve(&[]).unwrap();
    assert_eq!(endpoint.host, "tcp://127.0.0.1:2376");
    assert_eq!(endpoint.tls, Some(store.0.join("contexts/tls/f00d/docker")));
    assert!(matches!(endpoint.source, Source::Context { ref name, .. } if name == "desktop-linux"));
    assert_eq!(endpoint.exports(), [(CONTEXT_VAR, "desktop-linux".to_string())]);
}

#[test]
fn docker_context_over_the_current_one_and_docker_host_over_both() {
    let store = Store::new();
    store.context("a1", "rootless", "unix:///run/user/1000/docker.sock", "", false);
    store.context("b2", "desktop-linux", "tcp://127.0.0.1:2376", "", false);
    store.current("desktop-linux");
    let chosen = store.resolve(&[("DOCKER_CONTEXT", "rootless")]).unwrap();
    assert_eq!(chosen.host, "unix:///run/user/1000/docker.sock");
    assert_eq!(chosen.tls, None);
    let host = store
        .resolve(&[
            ("DOCKER_CONTEXT", "rootless"),
            ("DOCKER_HOST", "tcp://10.1.2.3:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ])
        .unwrap();
    assert_eq!(host.host, "tcp://10.1.2.3:2376");
    assert_eq!(host.tls, Some(PathBuf::from("/certs")));
    assert_eq!(host.source, Source::Variable("DOCKER_HOST"));
    assert_eq!(store.resolve(&[("DOCKER_CONTEXT", "default")]).unwrap(), default());
}

#[test]
fn swarmlabs_own_variables_come_first() {
    let store = Store::new();
    store.context("a1", "rootless", "unix:///run/user/1000/docker.sock", "", false);
    let kept = store
        .resolve(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:41234"),
            (HOST_VAR, "tcp://engine:2376"),
            (CERT_PATH_VAR, "/tls"),
        ])
        .unwrap();
    assert_eq!(kept.host, "tcp://engine:2376");
    assert_eq!(kept.tls, Some(PathBuf::from("/tls")));
    assert_eq!(
        kept.exports(),
        [
            (HOST_VAR, "tcp://engine:2376".to_string()),
            (CERT_PATH_VAR, "/tls".to_string())
        ],
        "TLS is kept by swarmlab env"
    );
    let context = store
        .resolve(&[("DOCKER_HOST", "tcp://127.0.0.1:41234"), (CONTEXT_VAR, "rootless")])
        .unwrap();
    assert_eq!(context.host, "unix:///run/user/1000/docker.sock");
}

#[test]
fn a_clusters_context_leads_back_to_its_host_engine() {
    let store = Store::new();
    store.context("a1", "rootless", "unix:///run/user/1000/docker.sock", "", false);
    store.context(
        "c3",
        "swarmlab-lab",
        "tcp://127.0.0.1:40000",
        "swarmlab cluster lab; host engine: context rootless",
        true,
    );
    store.context(
        "d4",
        "swarmlab-two",
        "tcp://127.0.0.1:40001",
        "swarmlab cluster two; host engine: unix:///var/run/docker.sock",
        true,
    );
    store.current("swarmlab-lab");
    assert_eq!(store.resolve(&[]).unwrap().host, "unix:///run/user/1000/docker.sock");
    store.current("swarmlab-two");
    assert_eq!(store.resolve(&[]).unwrap().host, "unix:///var/run/docker.sock");
    let mark = host_mark(&store.resolve(&[("DOCKER_CONTEXT", "rootless")]).unwrap());
    assert_eq!(mark, "host engine: context rootless");
    // Two cluster contexts that name each other end, at the second.
    store.context(
        "e5",
        "swarmlab-a",
        "tcp://127.0.0.1:40002",
        "host engine: context swarmlab-b",
        false,
    );
    store.context(
        "f6",
        "swarmlab-b",
        "tcp://127.0.0.1:40003",
        "host engine: context swarmlab-a",
        false,
    );
    store.current("swarmlab-a");
    assert_eq!(store.resolve(&[]).unwrap().host, "tcp://127.0.0.1:40003");
}

#[test]
fn a_missing_context_is_a_clear_error() {
    let store = Store::new();
    let missing = store.resolve(&[("DOCKER_CONTEXT", "gone")]).unwrap_err();
    assert_eq!(missing.exit_code(), 2);
    assert!(
        missing
            .to_string()
            .contains("docker context \"gone\" (from DOCKER_CONTEXT) does not exist"),
        "{missing}"
    );
    store.current("also-gone");
    assert!(store.resolve(&[]).unwrap_err().to_string().contains("currentContext"));
}
