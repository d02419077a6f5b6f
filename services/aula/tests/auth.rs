//! End-user identity across the platform (issue #15), with `AULA_AUTH=jwt`: the six services
//! and the gateway in-process, tokens signed by keys generated here.
//!
//! Table-driven over every RPC and REST route that takes a user: a token for user A asking
//! for user B is PERMISSION_DENIED / 403 in each; A's own data works (an empty `id_usuario`
//! meaning A); staff works; and no token, expired, not yet valid, wrong issuer, wrong
//! audience, bad signature, `alg: none` and HMAC signed with the public key are all
//! UNAUTHENTICATED / 401. With `AULA_AUTH` unset every other test of the workspace runs.

mod common;

use aula_api::*;
use aula_runtime::auth::{
    dev::{claims, now, SigningKey},
    Rule, RULES,
};
use aula_runtime::testing::Reply;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use common::Platform;
use serde_json::{json, Value};
use std::time::Duration;
use tonic::{Code, Request};

const A: &str = "7";
const B: &str = "8";
const STAFF: &str = "1";

struct Keys {
    ed: SigningKey,
    ec: SigningKey,
}

impl Keys {
    fn student(&self, user: &str) -> String {
        self.ed
            .sign(&claims(user, &["student"], Duration::from_secs(600)))
    }
    fn staff(&self) -> String {
        self.ec
            .sign(&claims(STAFF, &["staff"], Duration::from_secs(600)))
    }

    /// Every kind of token that proves nothing, each for user A, with its name.
    fn bad(&self) -> Vec<(&'static str, Option<String>)> {
        let good = claims(A, &[], Duration::from_secs(600));
        let with = |changes: Value| {
            let mut c = good.clone();
            for (k, v) in changes.as_object().unwrap() {
                c[k] = v.clone();
            }
            c
        };
        let public = B64.decode(self.ed.jwk()["x"].as_str().unwrap()).unwrap();
        let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        hs.kid = Some(self.ed.kid.clone());
        let hmac =
            jsonwebtoken::encode(&hs, &good, &jsonwebtoken::EncodingKey::from_secret(&public))
                .unwrap();
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(good.to_string())
        );
        vec![
            ("no token", None),
            (
                "expired",
                Some(self.ed.sign(&with(json!({"exp": now() - 3600})))),
            ),
            (
                "not yet valid",
                Some(self.ed.sign(&with(json!({"nbf": now() + 3600})))),
            ),
            (
                "wrong issuer",
                Some(self.ed.sign(&with(json!({"iss": "https://evil.example"})))),
            ),
            (
                "wrong audience",
                Some(self.ed.sign(&with(json!({"aud": "elsewhere"})))),
            ),
            (
                "bad signature",
                Some(SigningKey::ed25519(&self.ed.kid).sign(&good)),
            ),
            ("alg none", Some(none)),
            ("HMAC signed with the public key", Some(hmac)),
        ]
    }
}

async fn platform() -> (Platform, Keys, Vec<(String, String)>) {
    let keys = Keys {
        ed: SigningKey::ed25519("ed-1"),
        ec: SigningKey::p256("ec-1"),
    };
    let dir = tempfile::tempdir().unwrap();
    let env = common::auth_env(dir.path(), &[&keys.ed, &keys.ec]);
    (common::spawn_with(dir, &env).await, keys, env)
}

fn req<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(message);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r.set_timeout(Duration::from_secs(20));
    r
}

fn code<T>(r: Result<T, tonic::Status>) -> (Code, String) {
    match r {
        Ok(_) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_string()),
    }
}

/// Every RPC that takes an `id_usuario`: the rule [`Rule::OwnUser`].
const USER_RPCS: &[&str] = &[
    "services.CursosService/GetUserCourses",
    "services.CursosService/Enroll",
    "services.CursosService/Unenroll",
    "services.CursosService/AskQuestion",
    "services.CursosService/SendNotification",
    "services.ChatbotService/ResolveDuvida",
    "services.ChatbotService/ResolveDuvidaStream",
    "services.CPARService/CreateSchedule",
    "services.CPARService/ListSchedules",
    "services.NotificacoesService/SendNotification",
    "services.NotificacoesService/NotifySchedule",
    "services.NotificacoesService/ListNotifications",
    "services.NotificacoesService/MarkAsRead",
    "services.NotificacoesService/SubscribeNotifications",
    "services.InsightsService/RecordInteraction",
];

/// Calls `rpc` acting on `user` with `token`.
async fn call(p: &Platform, rpc: &str, user: &str, token: Option<&str>) -> (Code, String) {
    let u = user.to_string();
    let question = || ChatbotDuvidaRequest {
        aula_contexto: "Rust".into(),
        duvida: "O que é ownership?".into(),
        id_usuario: u.clone(),
        ..Default::default()
    };
    match rpc {
        "services.CursosService/GetUserCourses" => code(
            p.cursos()
                .get_user_courses(req(GetUserCoursesRequest { id_usuario: u }, token))
                .await,
        ),
        "services.CursosService/Enroll" => code(
            p.cursos()
                .enroll(req(
                    EnrollRequest {
                        id_usuario: u,
                        id_curso: "1".into(),
                    },
                    token,
                ))
                .await,
        ),
        "services.CursosService/Unenroll" => code(
            p.cursos()
                .unenroll(req(
                    UnenrollRequest {
                        id_usuario: u,
                        id_curso: "1".into(),
                    },
                    token,
                ))
                .await,
        ),
        "services.CursosService/AskQuestion" => code(
            p.cursos()
                .ask_question(req(
                    AskQuestionRequest {
                        id_curso: "1".into(),
                        aula_contexto: "Rust".into(),
                        duvida: "O que é ownership?".into(),
                        id_usuario: u,
                    },
                    token,
                ))
                .await,
        ),
        "services.CursosService/SendNotification" => code(
            p.cursos()
                .send_notification(req(
                    SendNotificationRequest {
                        id_usuario: u,
                        message: "olá".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        "services.ChatbotService/ResolveDuvida" => {
            code(p.chatbot().resolve_duvida(req(question(), token)).await)
        }
        "services.ChatbotService/ResolveDuvidaStream" => code(
            p.chatbot()
                .resolve_duvida_stream(req(question(), token))
                .await,
        ),
        "services.CPARService/CreateSchedule" => code(
            p.cpar()
                .create_schedule(req(
                    CreateScheduleRequest {
                        id_usuario: u,
                        titulo: "Tutoria".into(),
                        inicio: Some(prost_types::Timestamp {
                            seconds: now() as i64 + 86_400,
                            nanos: 0,
                        }),
                        duracao_minutos: 30,
                    },
                    token,
                ))
                .await,
        ),
        "services.CPARService/ListSchedules" => code(
            p.cpar()
                .list_schedules(req(
                    ListSchedulesRequest {
                        id_usuario: u,
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        "services.NotificacoesService/SendNotification" => code(
            p.notificacoes()
                .send_notification(req(
                    SendNotificationRequest {
                        id_usuario: u,
                        message: "olá".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        "services.NotificacoesService/NotifySchedule" => code(
            p.notificacoes()
                .notify_schedule(req(
                    NotifyScheduleRequest {
                        id_agendamento: "1".into(),
                        id_usuario: u,
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        "services.NotificacoesService/ListNotifications" => code(
            p.notificacoes()
                .list_notifications(req(
                    ListNotificationsRequest {
                        id_usuario: u,
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        "services.NotificacoesService/MarkAsRead" => code(
            p.notificacoes()
                .mark_as_read(req(
                    MarkAsReadRequest {
                        id_usuario: u,
                        ids: vec!["1".into()],
                    },
                    token,
                ))
                .await,
        ),
        "services.NotificacoesService/SubscribeNotifications" => code(
            p.notificacoes()
                .subscribe_notifications(req(
                    SubscribeNotificationsRequest { id_usuario: u },
                    token,
                ))
                .await,
        ),
        "services.InsightsService/RecordInteraction" => code(
            p.insights()
                .record_interaction(req(
                    RecordInteractionRequest {
                        id_interacao: format!("i-{}", rand::random::<u64>()),
                        id_usuario: u,
                        modelo: "offline".into(),
                        sucesso: true,
                        ..Default::default()
                    },
                    token,
                ))
                .await,
        ),
        other => panic!("no call for {other}"),
    }
}

#[test]
fn the_table_covers_every_rpc_that_takes_a_user() {
    let own: Vec<String> = RULES
        .iter()
        .filter(|(_, _, r)| *r == Rule::OwnUser)
        .map(|(s, m, _)| format!("{s}/{m}"))
        .collect();
    let mut listed: Vec<String> = USER_RPCS.iter().map(|s| s.to_string()).collect();
    let mut own_sorted = own.clone();
    own_sorted.sort();
    listed.sort();
    assert_eq!(listed, own_sorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_taking_a_user_checks_whose_data_it_is() {
    let (p, keys, _) = platform().await;
    let a = keys.student(A);
    let staff = keys.staff();
    for rpc in USER_RPCS {
        let (c, msg) = call(&p, rpc, B, Some(&a)).await;
        assert_eq!(c, Code::PermissionDenied, "{rpc}: A asking for B: {msg}");
        assert!(
            msg.contains("own id_usuario"),
            "{rpc}: says which rule: {msg}"
        );
        let (c, msg) = call(&p, rpc, A, Some(&a)).await;
        assert_eq!(c, Code::Ok, "{rpc}: A's own: {msg}");
        let (c, msg) = call(&p, rpc, "", Some(&a)).await;
        assert_eq!(
            c,
            Code::Ok,
            "{rpc}: empty id_usuario is the caller's: {msg}"
        );
        let (c, msg) = call(&p, rpc, B, Some(&staff)).await;
        assert_eq!(c, Code::Ok, "{rpc}: staff for B: {msg}");
        for (name, token) in keys.bad() {
            let (c, msg) = call(&p, rpc, A, token.as_deref()).await;
            assert_eq!(c, Code::Unauthenticated, "{rpc}: {name}: {msg}");
            if let Some(t) = &token {
                assert!(
                    !msg.contains(t.as_str()),
                    "{rpc}: the token is in the message"
                );
            }
        }
    }
    // The empty id_usuario really is the caller's: A's enrolment shows up as A's.
    let mine = p
        .cursos()
        .get_user_courses(req(GetUserCoursesRequest::default(), Some(&a)))
        .await
        .answer();
    assert!(!mine.cursos_inscritos.is_empty() || mine.message.contains(A));

    // Staff-only RPCs, the catalogue for anyone signed in, health for anyone.
    let insights = || GetCourseInsightsRequest {
        id_curso: "1".into(),
    };
    let (c, msg) = code(
        p.insights()
            .get_course_insights(req(insights(), Some(&a)))
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    assert!(msg.contains("staff"), "{msg}");
    let (c, msg) = code(
        p.insights()
            .get_course_insights(req(insights(), Some(&staff)))
            .await,
    );
    assert_eq!(c, Code::Ok, "{msg}");
    let media = || AddMediaRequest {
        id_curso: "1".into(),
        titulo: "Aula 1".into(),
        tipo: "video".into(),
        url: "https://example.com/v.mp4".into(),
        ..Default::default()
    };
    assert_eq!(
        code(p.midia().add_media(req(media(), Some(&a))).await).0,
        Code::PermissionDenied
    );
    let (c, msg) = code(p.midia().add_media(req(media(), Some(&staff))).await);
    assert_eq!(c, Code::Ok, "{msg}");
    let list = || ListCoursesRequest::default();
    assert_eq!(
        code(p.cursos().list_courses(req(list(), Some(&a))).await).0,
        Code::Ok
    );
    assert_eq!(
        code(p.cursos().list_courses(req(list(), None)).await).0,
        Code::Unauthenticated
    );
    let get_media = || GetCourseMediaRequest {
        id_curso: "1".into(),
    };
    assert_eq!(
        code(p.midia().get_media(req(get_media(), Some(&a))).await).0,
        Code::Ok
    );
    for s in p.all() {
        s.assert_serving().await;
    }

    let text = p.cursos.metrics_text().await;
    assert!(
        text.contains(r#"aula_authz_denied_total{method="/services.CursosService/Enroll"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"aula_auth_failures_total{reason="expired"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_their_owners() {
    let (p, keys, _) = platform().await;
    let a = keys.student(A);
    let b = keys.student(B);
    let staff = keys.staff();
    let created = p
        .cpar()
        .create_schedule(req(
            CreateScheduleRequest {
                id_usuario: String::new(),
                titulo: "Tutoria".into(),
                inicio: Some(prost_types::Timestamp {
                    seconds: now() as i64 + 86_400,
                    nanos: 0,
                }),
                duracao_minutos: 30,
            },
            Some(&b),
        ))
        .await
        .answer();
    assert_eq!(created.id_usuario, B, "an empty id_usuario is the caller's");
    let id = created.id_agendamento;
    for token in [&a, &b, &staff] {
        let expected = if token == &a {
            Code::PermissionDenied
        } else {
            Code::Ok
        };
        let got = code(
            p.cpar()
                .get_schedule(req(
                    GetScheduleRequest {
                        id_agendamento: id.clone(),
                    },
                    Some(token),
                ))
                .await,
        );
        assert_eq!(got.0, expected, "GetSchedule: {}", got.1);
        let got = code(
            p.cpar()
                .notify_schedule(req(
                    NotifyScheduleRequest {
                        id_agendamento: id.clone(),
                        ..Default::default()
                    },
                    Some(token),
                ))
                .await,
        );
        assert_eq!(got.0, expected, "NotifySchedule: {}", got.1);
    }
    let cancel = |token: &str| {
        let mut cpar = p.cpar();
        let r = req(
            CancelScheduleRequest {
                id_agendamento: id.clone(),
            },
            Some(token),
        );
        async move { code(cpar.cancel_schedule(r).await) }
    };
    assert_eq!(cancel(&a).await.0, Code::PermissionDenied);
    assert_eq!(cancel(&b).await.0, Code::Ok);
    for (name, token) in keys.bad() {
        let got = code(
            p.cpar()
                .get_schedule(req(
                    GetScheduleRequest {
                        id_agendamento: id.clone(),
                    },
                    token.as_deref(),
                ))
                .await,
        );
        assert_eq!(got.0, Code::Unauthenticated, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_taking_a_user_checks_it_too() {
    let (p, keys, env) = platform().await;
    let gateway = [("GATEWAY_DRAIN_DELAY", "0s"), ("AULA_PEER_TIMEOUT", "20s")];
    let gw = p
        .start_gateway(&[env, common::pairs(&gateway)].concat(), None)
        .await;
    let base = format!("http://{}", gw.addr());
    let http = reqwest::Client::new();
    let a = keys.student(A);
    let staff = keys.staff();
    // A schedule of B's, for the route that takes one.
    let schedule = p
        .cpar()
        .create_schedule(req(
            CreateScheduleRequest {
                id_usuario: B.into(),
                titulo: "Tutoria".into(),
                inicio: Some(prost_types::Timestamp {
                    seconds: now() as i64 + 86_400,
                    nanos: 0,
                }),
                duracao_minutos: 30,
            },
            Some(&staff),
        ))
        .await
        .answer()
        .id_agendamento;

    // (route, its path for user `{u}`); a POST carries a question asked by `u`.
    let routes = [
        (
            "GET /cursos/ver_inscricoes_do_usuario/{id}",
            "/cursos/ver_inscricoes_do_usuario/{u}",
        ),
        ("POST /cursos/tirar_duvida/{id}", "/cursos/tirar_duvida/1"),
        (
            "GET /cursos/enviar_notificacao/{id}",
            "/cursos/enviar_notificacao/{u}",
        ),
        ("POST /chatbot/duvida", "/chatbot/duvida"),
        // The schedule is B's: "acting on B" is asking for it.
        (
            "GET /cpar/notificar_agendamento/{id}",
            "/cpar/notificar_agendamento/{schedule}",
        ),
    ];
    // (method, path, JSON body) of `name` at `path` acting on user `u`.
    let route = |name: &str, path: &str, u: &str| {
        let path = path.replace("{u}", u).replace("{schedule}", &schedule);
        if name.starts_with("POST") {
            let question =
                json!({"aula_contexto": "Rust", "duvida": "O que é ownership?", "id_usuario": u});
            (reqwest::Method::POST, path, Some(question))
        } else {
            (reqwest::Method::GET, path, None)
        }
    };
    let send = |route: &(reqwest::Method, String, Option<Value>), token: Option<&str>| {
        let (method, path, body) = route.clone();
        let mut r = http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let www = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            (status, www, resp.text().await.unwrap())
        }
    };
    for (name, path) in routes {
        let for_b = route(name, path, B);
        let (status, _, body) = send(&for_b, Some(&a)).await;
        assert_eq!(status, 403, "{name}: A asking for B: {body}");
        let (status, _, body) = send(&for_b, Some(&staff)).await;
        assert_eq!(status, 200, "{name}: staff for B: {body}");
        if !name.contains("agendamento") {
            let (status, _, body) = send(&route(name, path, A), Some(&a)).await;
            assert_eq!(status, 200, "{name}: A's own: {body}");
        }
        for (bad, token) in keys.bad() {
            let (status, www, body) = send(&route(name, path, A), token.as_deref()).await;
            assert_eq!(status, 401, "{name}: {bad}: {body}");
            // RFC 6750: no error code without a token (section 3.1), invalid_token with one.
            let www = www.unwrap_or_default();
            if token.is_none() {
                assert_eq!(www, r#"Bearer realm="aula""#, "{name}: {bad}");
            } else {
                assert!(
                    www.starts_with(
                        r#"Bearer realm="aula", error="invalid_token", error_description=""#
                    ),
                    "{name}: {bad}: {www}"
                );
                assert!(!www.contains(token.as_deref().unwrap()), "{name}: {bad}");
            }
            if let Some(t) = &token {
                assert!(
                    !body.contains(t.as_str()),
                    "{name}: {bad}: the token is in the body"
                );
            }
        }
    }
    // Status routes need a token; probes do not.
    let status = |path: &'static str, token: Option<String>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/cursos", None).await, 401);
    assert_eq!(status("/cursos", Some(a.clone())).await, 200);
    assert_eq!(status("/midia_conteudo/1", Some(a.clone())).await, 200);
    assert_eq!(status("/livez", None).await, 200);
    assert_eq!(status("/healthz", None).await, 200);
    gw.stop().await.unwrap();
}
