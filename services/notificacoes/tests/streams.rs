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
    let dir = tempfile::tempdir().unwrap();
    let s = testing::spawn(
        notificacoes::service(),
        dir.path(),
        &[
            ("NOTIFICACOES_STREAMS_PER_USER".into(), "2".into()),
            ("NOTIFICACOES_STREAMS_MAX".into(), "3".into()),
        ],
    )
    .await
    .expect("notificacoes starts");
    let mut c = NotificacoesServiceClient::new(s.channel());

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
