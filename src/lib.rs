//! swarmlab: multi-node Docker Swarm clusters on one machine, built from
//! Docker-in-Docker containers, for learning and testing.
//!
//! The CLI (`src/main.rs`) is a thin layer over this library. State lives
//! only in the labels of the containers, volumes and networks on the host
//! engine (see [`labels`]).

mod addressing;
pub mod chaos;
pub mod cluster;
pub mod config;
pub mod context;
pub mod convergence;
pub mod demo;
pub mod demo_image;
pub mod engine;
pub mod error;
pub mod forwarder_container;
mod host;
pub mod host_images;
mod host_room;
pub mod images;
mod inotify;
pub mod input;
pub mod labels;
pub mod lifecycle;
pub mod naming;
mod neighbours;
mod node_choice;
mod node_container;
pub mod node_image;
pub mod nodes;
mod oneshot;
pub mod ports;
pub mod progress;
pub mod rebalance;
mod snapshot;
mod stats;
mod swarm;
pub mod tls;
pub mod top;
pub mod traffic;
pub mod viz;

pub use error::{Error, Result};
