//! The worker's shutdown: no new task, the notice to running activities, the grace, and then
//! stopping what still runs (see [`WorkerHandle::shutdown`]).

use super::*;

impl Running {
    pub(super) async fn shutdown(self) {
        let Running { stop, join, shared } = self;
        stop.send_replace(true);
        let _ = join.await;
        // Running attempts and local activities hear it now (`CancelReason::WorkerShutdown`).
        shared.draining.send_replace(true);
        shared.tasks.close();
        let grace = shared.opts.shutdown_grace;
        if tokio::time::timeout(grace, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::info!(worker_id = %shared.id, "shutdown grace over: stopping what still runs");
            shared.kill.cancel();
            shared.tasks.wait().await;
        }
    }
}
