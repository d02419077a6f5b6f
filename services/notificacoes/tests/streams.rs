//! The bounds on open SubscribeNotifications streams (#14): per user and in total, each refusal
//! RESOURCE_EXHAUSTED naming its variable, and a closed stream gives its place back.

use aula_api::{
    notificacoes_service_client::NotificacoesServiceClient, Notification,
    SubscribeNotificationsRequest,
};
use aula_runtime::testing;
use std::time::{Duration, Instant};
use tonic::{transport::Channel, Code};

type Client = NotificacoesServiceClient<Channel>;

async fn subscribe(
    c: &mut Client,
    user: &str,
) -> Result<tonic::Streaming<Notification>, tonic::Status> {
    c.subscribe_notifications(SubscribeNotificationsRequest {
        id_usuario: user.into(),
    })
    .await
    .map(|r| r.into_inner())
}

#[tokio::test]
async fn streams_are_bounded_per_user_and_in_total() {
    let (_dir, s, mut c) = testing::start_alone(
        notificacoes::service(),
        &[
            ("NOTIFICACOES_STREAMS_PER_USER", "2"),
            ("NOTIFICACOES_STREAMS_MAX", "3"),
        ],
        NotificacoesServiceClient::new,
    )
    .await;

    let first = subscribe(&mut c, "1").await.expect("first stream");
    let _second = subscribe(&mut c, "1").await.expect("second stream");
    let status = subscribe(&mut c, "1")
        .await
        .expect_err("a third for user 1");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("NOTIFICACOES_STREAMS_PER_USER"),
        "{status:?}"
    );

    let _other = subscribe(&mut c, "2").await.expect("another user's stream");
    let status = subscribe(&mut c, "3").await.expect_err("over the total");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("NOTIFICACOES_STREAMS_MAX"),
        "{status:?}"
    );

    // Closing a stream gives its place back (once the server has seen the reset).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match subscribe(&mut c, "1").await {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert!(Instant::now() < deadline, "the place never came back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("aula_shed_total{reason=\"streams_per_user\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aula_notification_streams_open"),
        "{metrics}"
    );
    s.running.stop().await.unwrap();
}

/// A stream ends at its caller's deadline (#13): tonic stops enforcing `grpc-timeout` once the
/// response headers are out, so before this a subscription ran on past it, holding its place.
#[tokio::test]
async fn a_stream_ends_with_deadline_exceeded_at_the_callers_deadline() {
    let (_dir, s, mut c) = testing::start_alone(
        notificacoes::service(),
        &[("NOTIFICACOES_STREAMS_PER_USER", "1")],
        NotificacoesServiceClient::new,
    )
    .await;

    let mut request = tonic::Request::new(SubscribeNotificationsRequest {
        id_usuario: "1".into(),
    });
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let mut stream = c
        .subscribe_notifications(request)
        .await
        .expect("subscribed")
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ended within 10 s of a 300 ms deadline");
    let status = end.expect_err("DEADLINE_EXCEEDED, not a notification");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Its place is free again: the user's one stream may be opened anew.
    let until = Instant::now() + Duration::from_secs(5);
    while let Err(e) = subscribe(&mut c, "1").await {
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        assert!(Instant::now() < until, "the place never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.running.stop().await.unwrap();
}
