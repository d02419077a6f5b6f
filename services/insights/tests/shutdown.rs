//! An open health `Watch` stream does not hold a service's shutdown (issue #13): it carries the
//! NOT_SERVING the drain sets and then ends, so the server stops as soon as its calls are done
//! instead of waiting out the whole grace period for the watcher.

use aula_runtime::testing;
use std::time::Duration;

#[tokio::test]
async fn a_health_watcher_does_not_hold_the_shutdown() {
    // A grace period far longer than the test may wait: stopping within it means the watcher
    // did not hold the drain.
    let (_dir, svc) =
        testing::spawn_alone(insights::service(), &[("AULA_SHUTDOWN_GRACE", "120s")]).await;
    let mut watch = svc.watch_health().await;
    assert_eq!(watch.recv().await, Some(true), "SERVING first");

    let stopped = tokio::time::timeout(Duration::from_secs(20), svc.running.stop()).await;
    assert!(
        stopped.is_ok(),
        "the service still had not stopped after 20 s (grace 120 s): the watch held it"
    );
    stopped.unwrap().unwrap();
    assert_eq!(
        watch.recv().await,
        Some(false),
        "the watcher saw NOT_SERVING"
    );
    assert_eq!(watch.recv().await, None, "then the stream ended");
}
