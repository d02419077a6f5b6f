//! A call refused at the in-flight limit is answered before any other layer of the server
//! does its work (services/runtime/src/shed.rs): under overload most calls are refused, and
//! each one's cost is taken from the calls being served. Seen from outside: a refused call
//! gets no server span even when its caller asked for one (`traceparent`), while an admitted
//! call with the same header does. Its own test binary: it installs the process's subscriber.

mod common;

use aula_api::{AskQuestionRequest, Empty};
use common::*;
use std::time::Duration;
use tonic::Code;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn traced_get_status() -> tonic::Request<Empty> {
    let mut request = tonic::Request::new(Empty {});
    request
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    request
}

/// A line of the server span of a GetStatus call (its opening or closing).
fn has_get_status_span(logs: &str) -> bool {
    logs.lines()
        .any(|l| l.contains("grpc.server") && l.contains("CursosService/GetStatus"))
}

#[tokio::test]
async fn a_refused_call_builds_no_span_and_an_admitted_one_does() {
    let logs = aula_runtime::testing::capture_all_logs();
    let dir = tempfile::tempdir().unwrap();
    let bot = slow_chatbot(Duration::from_secs(3));
    let (svc, client) = cursos_asking(dir.path(), &bot, &[("AULA_MAX_IN_FLIGHT", "1")]).await;
    let held = {
        let mut c = client.clone();
        tokio::spawn(async move {
            c.ask_question(AskQuestionRequest {
                id_curso: "1".into(),
                aula_contexto: String::new(),
                duvida: "held".into(),
                id_usuario: String::new(),
            })
            .await
        })
    };
    eventually(SETTLE, "the question at the chatbot", || async {
        (bot.deadlines.lock().unwrap().len() == 1).then_some(())
    })
    .await;

    let status = client
        .clone()
        .get_status(traced_get_status())
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let text = logs.text();
    assert!(
        !has_get_status_span(&text),
        "the refused call built a span: {text}"
    );

    held.await.unwrap().expect("the held call is answered");
    client
        .clone()
        .get_status(traced_get_status())
        .await
        .expect("admitted");
    // The control: the same call admitted has its span, so the absence above means something.
    eventually(SETTLE, "the admitted call's span", || async {
        has_get_status_span(&logs.text()).then_some(())
    })
    .await;
    svc.running.stop().await.unwrap();
}
