//! The gRPC health service, with one change to tonic-health's: an open `Watch` stream ends
//! when the service starts draining (after it has carried the NOT_SERVING the drain sets).
//! A watcher holds an HTTP/2 stream open for as long as it likes, and a graceful shutdown waits
//! for open streams: one `grpc-health-probe -watch` or load balancer would otherwise hold the
//! shutdown for the whole grace period.

use futures::{Stream, StreamExt};
use std::{pin::Pin, time::Duration};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::{
    pb::{
        health_server::{Health, HealthServer},
        HealthCheckRequest, HealthCheckResponse,
    },
    server::{HealthReporter, HealthService},
};

/// How long a watch stream stays open after the drain starts: time for the NOT_SERVING update
/// to reach the watcher before the stream ends.
const LAST_WORD: Duration = Duration::from_millis(200);

/// The health service of `reporter`'s statuses, whose watch streams end on `drain`.
pub fn server(reporter: &HealthReporter, drain: CancellationToken) -> HealthServer<DrainingHealth> {
    HealthServer::new(DrainingHealth {
        inner: HealthService::from_health_reporter(reporter.clone()),
        drain,
    })
}

/// tonic-health's service; watch streams end when the drain starts.
pub struct DrainingHealth {
    inner: HealthService,
    drain: CancellationToken,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for DrainingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        let drain = self.drain.clone();
        let ends = async move {
            drain.cancelled().await;
            tokio::time::sleep(LAST_WORD).await;
        };
        Ok(Response::new(Box::pin(statuses.take_until(ends))))
    }
}
