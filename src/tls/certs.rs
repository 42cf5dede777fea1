//! Making a cluster's certificates: a CA that signs the nodes' server
//! identity and the client identity, then is dropped.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::addressing::Ipv4Net;
use crate::naming::ClusterName;

use super::{CA_CERT, CLIENT_CERT, CLIENT_KEY, SERVER_CERT, SERVER_KEY};

/// The CA, the nodes' server identity and the client identity, good from a
/// day before `now` (clocks differ) until `expires`. The CA's key is not
/// among them: it signs these and is dropped.
pub(super) fn generate(
    cluster: &ClusterName,
    subnet: &Ipv4Net,
    now: SystemTime,
    expires: SystemTime,
) -> Result<Vec<(&'static str, String)>, rcgen::Error> {
    let day = |time| {
        let (year, month, day) = date(time);
        rcgen::date_time_ymd(year, month, day)
    };
    let (not_before, not_after) = (day(now - Duration::from_secs(24 * 60 * 60)), day(expires));
    let dated = |mut params: CertificateParams| {
        params.not_before = not_before;
        params.not_after = not_after;
        params
    };
    let named = |what: &str| {
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, format!("swarmlab {cluster} {what}"));
        name
    };

    let ca_key = KeyPair::generate()?;
    let mut ca_params = dated(CertificateParams::default());
    ca_params.distinguished_name = named("CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate()?;
    let mut server_params = dated(CertificateParams::new(vec!["localhost".to_string()])?);
    server_params.distinguished_name = named("node");
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    server_params.subject_alt_names.extend(
        subnet
            .node_addresses()
            .map(|address| SanType::IpAddress(address.into())),
    );
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client_params = dated(CertificateParams::default());
    client_params.distinguished_name = named("client");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer)?;

    Ok(vec![
        (CA_CERT, ca_cert.pem()),
        (SERVER_CERT, server_cert.pem()),
        (SERVER_KEY, server_key.serialize_pem()),
        (CLIENT_CERT, client_cert.pem()),
        (CLIENT_KEY, client_key.serialize_pem()),
    ])
}

/// The calendar day of `time` (UTC): year, month, day.
fn date(time: SystemTime) -> (i32, u8, u8) {
    let days = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    (year as i32, month as u8, day as u8)
}

/// Year, month and day of a count of days since 1970-01-01 (Howard
/// Hinnant's algorithm for the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{CA_KEY, VALIDITY};

    #[test]
    fn days_become_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_790), (2026, 12, 3));
        assert_eq!(civil_from_days(20_818), (2026, 12, 31));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
    }

    #[test]
    fn certificates_are_made_for_a_year_without_keeping_the_ca_key() {
        let cluster = ClusterName::new("lab").unwrap();
        let subnet: Ipv4Net = "172.28.0.0/24".parse().unwrap();
        let now = SystemTime::now();
        let made = generate(&cluster, &subnet, now, now + VALIDITY).unwrap();
        let names: Vec<&str> = made.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, [CA_CERT, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY]);
        assert!(!names.contains(&CA_KEY));
    }
}
