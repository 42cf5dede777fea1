//! What the forwarder says, on its standard output (`docker logs`): each
//! port's state once, not every round.

use std::collections::HashMap;

/// A log nobody reads (its pipe closed) is no reason to stop forwarding.
pub(super) fn log(message: &str) {
    let _ = std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!("{message}\n"));
}

/// Logs `message` for `port` unless it is what was said last for it.
pub(super) fn tell(said: &mut HashMap<u16, String>, port: u16, message: &str) {
    if said.get(&port).map(String::as_str) != Some(message) {
        log(message);
        said.insert(port, message.to_string());
    }
}
