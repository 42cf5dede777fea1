//! swarmlab's integration tests: one binary, run against the real Docker
//! engine that scripts/setup installs and starts.

mod errors;
mod lifecycle;
mod support;
mod workloads;
