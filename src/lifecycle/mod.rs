//! Whole clusters: create (a plan, then the actions that carry it out),
//! delete, stop and start, and what `ls` and `inspect` show.

mod create;
mod delete;
mod network;
mod options;
mod plan;
mod power;
mod renew;
mod settle;
mod status;

pub use create::{Created, create};
pub use delete::{delete, delete_all};
pub use options::{CreateFlags, CreateOptions};
pub use power::{start, stop};
pub use status::{ClusterStatus, ClusterSummary, NodeRow, inspect, list};
