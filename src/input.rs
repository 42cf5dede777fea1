//! What users type that is not a name: durations and counts, parsed with
//! bounds, so that nothing computed from them later (a deadline, a list of
//! nodes) can overflow or run away.

use std::time::Duration;

/// The longest wait, timeout or interval swarmlab takes: a day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest polling interval: shorter ones would only burn CPU.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The most nodes one command may ask for: a cluster's largest size.
pub const MAX_COUNT: u32 = crate::naming::MAX_MANAGERS + crate::naming::MAX_WORKERS;

/// A duration such as `1s`, `500ms` or `2m`, at most a day.
pub fn duration(text: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|_| format!("expected a duration such as 1s, 500ms or 2m, got {text:?}"))?;
    if parsed > MAX_DURATION {
        return Err(format!("{text:?} is longer than the longest swarmlab waits (24h)"));
    }
    Ok(parsed)
}

/// A duration that paces repeated work: at least 10ms, at most a day.
pub fn interval(text: &str) -> Result<Duration, String> {
    let parsed = duration(text)?;
    if parsed < MIN_INTERVAL {
        return Err(format!("{text:?} is too short for an interval: use 10ms or more"));
    }
    Ok(parsed)
}

/// A number of nodes or tasks, 0 to [`MAX_COUNT`].
pub fn count(text: &str) -> Result<u32, String> {
    let parsed: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number (0 or more), got {text:?}"))?;
    if parsed > u64::from(MAX_COUNT) {
        return Err(format!("{text} is more than a cluster can hold ({MAX_COUNT} nodes)"));
    }
    Ok(parsed as u32)
}

/// A TCP port, 1 to 65535.
pub fn port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("expected a port from 1 to 65535, got {text:?}")),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(duration("24h"), Ok(MAX_DURATION));
        assert!(duration("99999999999h").unwrap_err().contains("longest"));
        assert!(duration("25h").is_err());
        assert!(duration("soon").unwrap_err().contains("expected a duration"));
        assert!(duration("").is_err());
        assert_eq!(duration("0s"), Ok(Duration::ZERO), "a zero wait means: do not wait");
        assert!(interval("0s").unwrap_err().contains("too short"));
        assert_eq!(interval("10ms"), Ok(MIN_INTERVAL));
    }

    #[test]
    fn counts_and_ports_are_bounded() {
        assert_eq!(count("0"), Ok(0));
        assert_eq!(count("209"), Ok(MAX_COUNT));
        assert!(count("4000000000").unwrap_err().contains("more than a cluster"));
        assert!(count("99999999999999999999999").is_err());
        assert!(count("-1").unwrap_err().contains("whole number"));
        assert!(count("two").is_err());
        assert_eq!(port("8080"), Ok(8080));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
    }
}
