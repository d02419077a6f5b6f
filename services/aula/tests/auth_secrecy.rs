//! Users' tokens never reach logs, spans or error messages: the platform and the gateway run
//! with `AULA_AUTH=jwt` under a TRACE subscriber capturing everything (spans included) while
//! good and bad tokens are sent, accepted, forwarded between services and refused.
//!
//! Its own test binary, because it installs a global subscriber.

mod common;

use aula_api::*;
use aula_runtime::auth::dev::{claims, now, SigningKey};
use serde_json::json;
use std::time::Duration;

fn req<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_logs_spans_or_messages() {
    let logs = aula_runtime::testing::capture_all_logs();

    let key = SigningKey::ed25519("ed-1");
    let dir = tempfile::tempdir().unwrap();
    let env = common::auth_env(dir.path(), &[&key]);
    let p = common::spawn_with(dir, &env).await;

    let good = key.sign(&claims("7", &[], Duration::from_secs(600)));
    let mut expired_claims = claims("7", &[], Duration::from_secs(600));
    expired_claims["exp"] = json!(now() - 3600);
    let expired = key.sign(&expired_claims);
    let forged =
        SigningKey::ed25519("ed-1").sign(&claims("7", &["staff"], Duration::from_secs(600)));
    let tokens = [&good, &expired, &forged];

    let mut messages = Vec::new();
    // Accepted, and forwarded: cursos -> midia, chatbot -> insights.
    p.cursos()
        .ask_question(req(
            AskQuestionRequest {
                id_curso: "1".into(),
                duvida: "O que é uma variável?".into(),
                ..Default::default()
            },
            &good,
        ))
        .await
        .unwrap();
    // Denied, and refused.
    for token in tokens {
        for user in ["7", "8"] {
            if let Err(s) = p
                .cursos()
                .get_user_courses(req(
                    GetUserCoursesRequest {
                        id_usuario: user.into(),
                    },
                    token,
                ))
                .await
            {
                messages.push(s.message().to_string());
            }
        }
    }

    // The gateway: accepted, denied, refused.
    let no_drain_delay = common::pairs(&[("GATEWAY_DRAIN_DELAY", "0s")]);
    let gw = p.start_gateway(&[env, no_drain_delay].concat(), None).await;
    let http = reqwest::Client::new();
    for token in tokens {
        for user in ["7", "8"] {
            let r = http
                .get(format!(
                    "http://{}/cursos/ver_inscricoes_do_usuario/{user}",
                    gw.addr()
                ))
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            messages.push(r.text().await.unwrap());
        }
    }
    gw.stop().await.unwrap();
    p.stop().await;

    let text = logs.text();
    assert!(
        text.contains("authentication failed"),
        "the refusals were logged"
    );
    assert!(
        text.contains("permission denied"),
        "the denials were logged"
    );
    assert!(messages.len() >= 6, "{messages:?}");
    for token in tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !text.contains(signature),
            "a token's signature is in the logs"
        );
        for m in &messages {
            assert!(!m.contains(signature), "a token is in a message: {m}");
        }
    }
}
