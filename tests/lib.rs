//! swarmlab's integration tests: one binary, run against the real Docker
//! engine that scripts/setup installs and starts.

mod declarative;
mod engine_restart;
mod engine_versions;
mod engines;
mod errors;
mod faults;
mod forwarder;
mod host_limits;
mod lifecycle;
mod node_images;
mod portability;
mod properties;
mod resilience;
mod rootless;
mod safety;
mod support;
mod top;
mod traffic;
mod viz;
mod workloads;
