use super::*;

#[test]
fn bundles_split_back_into_their_blocks() {
    let bundle = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nCCC\n-----END PRIVATE KEY-----\n";
    let blocks = split_pem(bundle);
    assert_eq!(blocks.len(), 3);
    assert!(blocks[2].starts_with("-----BEGIN PRIVATE KEY-----\nCCC"));
    assert_eq!(blocks.concat(), bundle);
    assert!(split_pem("no pem here").is_empty());
}

#[test]
fn renewal_is_due_near_expiry_and_for_clusters_made_before_expiry_was_recorded() {
    let dir = std::env::temp_dir().join(format!("swarmlab-tls-test-{}", crate::host::random_suffix()));
    fs::create_dir_all(&dir).unwrap();
    let tls = ClusterTls {
        dir: dir.clone(),
        relative: PathBuf::new(),
    };
    let now = SystemTime::now();
    assert!(tls.needs_renewal(now), "no record: made by an older swarmlab");
    let write = |when: SystemTime| {
        fs::write(dir.join(EXPIRES), humantime::format_rfc3339_seconds(when).to_string()).unwrap();
    };
    write(now + VALIDITY);
    assert!(!tls.needs_renewal(now));
    write(now + Duration::from_secs(24 * 60 * 60));
    assert!(tls.needs_renewal(now), "a day left");
    write(now + VALIDITY);
    fs::write(dir.join(CA_KEY), "old").unwrap();
    assert!(tls.needs_renewal(now), "a kept CA key");
    fs::remove_dir_all(dir).unwrap();
}
