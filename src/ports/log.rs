//! What the forwarder says, on its standard output (`docker logs`): each
//! port's state once, not every round.

use std::collections::HashMap;

pub(super) fn log(message: &str) {
    println!("{message}");
}

/// Logs `message` for `port` unless it is what was said last for it.
pub(super) fn tell(said: &mut HashMap<u16, String>, port: u16, message: &str) {
    if said.get(&port).map(String::as_str) != Some(message) {
        log(message);
        said.insert(port, message.to_string());
    }
}
