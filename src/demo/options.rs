//! What a demo is asked for, and whether its scenario can play out so.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::naming::ClusterName;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub name: ClusterName,
    pub workers: u32,
    pub port: u16,
    /// Replicas the service is scaled to (the blog's 11).
    pub replicas: u32,
    pub heartbeat: Duration,
    /// The Docker engine of the nodes; None takes the default node image.
    pub engine: Option<crate::node_image::EngineVersion>,
    pub keep: bool,
    /// How long each wait of the scenario (the create, convergence, an
    /// answer, a replacement, a recovery) may take before the demo gives up.
    pub timeout: Duration,
}

impl DemoOptions {
    /// Refuses what the scenario cannot do: it crashes worker-2, and kills
    /// the tasks on manager-1 while the others keep answering. `run` checks;
    /// the CLI checks first too, so that bad input is said before the engine
    /// is looked for.
    pub fn check(&self) -> Result<()> {
        if self.workers < 2 {
            return Err(Error::invalid("the demo crashes worker-2: use --workers 2 or more"));
        }
        // Spread evenly, as many replicas as nodes put one on the manager.
        if self.replicas <= self.workers {
            return Err(Error::invalid(format!(
                "the demo kills the tasks on manager-1, which needs a replica on every node: use --replicas {} or more",
                self.workers + 1
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(workers: u32, replicas: u32) -> DemoOptions {
        DemoOptions {
            name: ClusterName::new("demo").unwrap(),
            workers,
            port: 8080,
            replicas,
            heartbeat: Duration::from_secs(1),
            engine: None,
            keep: false,
            timeout: Duration::from_secs(120),
        }
    }

    #[test]
    fn the_blog_s_demo_passes() {
        assert!(options(2, 11).check().is_ok());
        assert!(options(5, 6).check().is_ok());
    }

    #[test]
    fn a_demo_without_worker_2_is_refused() {
        let error = options(1, 11).check().unwrap_err().to_string();
        assert!(error.contains("--workers 2 or more"), "{error}");
    }

    #[test]
    fn a_demo_with_no_replica_left_for_manager_1_is_refused() {
        let error = options(5, 5).check().unwrap_err().to_string();
        assert!(error.contains("--replicas 6 or more"), "{error}");
    }
}
