//! The verifier and the layer against real keys generated here: every way a token can be
//! wrong, key rotation, the service-identity path, and the checks on `id_usuario`.

use super::{dev::*, *};
use crate::{config::Env, identity::ServiceIdentity, metrics::Metrics};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use serde_json::{json, Value};
use std::{convert::Infallible, time::Duration};
use tower::ServiceExt as _;

struct Fixture {
    _dir: tempfile::TempDir,
    jwks_path: std::path::PathBuf,
    ed: SigningKey,
    ec: SigningKey,
    config: AuthConfig,
}

/// The settings of a service trusting the key set `keys` (and the service network), written to
/// a file in a directory that lives as long as the `TempDir` returned.
pub(super) fn config_with(keys: &Value) -> (tempfile::TempDir, std::path::PathBuf, AuthConfig) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, keys.to_string()).unwrap();
    let env = Env::from_pairs(dev_env(path.to_str().unwrap(), true));
    let config = AuthConfig::load(&env).unwrap().unwrap();
    (dir, path, config)
}

fn fixture() -> Fixture {
    let ed = SigningKey::ed25519("ed-1");
    let ec = SigningKey::p256("ec-1");
    let (dir, jwks_path, mut config) = config_with(&jwks(&[&ed, &ec]));
    // Every unknown kid refetches at once here (rotation); the rate limit has its own test.
    config.min_refetch = Duration::ZERO;
    Fixture {
        _dir: dir,
        jwks_path,
        ed,
        ec,
        config,
    }
}

fn verifier(f: &Fixture) -> Verifier {
    Verifier::new(f.config.clone()).unwrap()
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn user_claims(user: &str) -> Value {
    claims(user, &[], Duration::from_secs(600))
}

/// A token whose header is `header` and whose signature is garbage or empty.
fn forged(header: Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

async fn reason(v: &Verifier, token: &str) -> Reason {
    let e = v.verify(token).await.unwrap_err();
    assert!(!e.message.contains(token), "the message quotes the token");
    e.reason
}

#[tokio::test]
async fn good_tokens_name_the_user_and_roles() {
    let f = fixture();
    let v = verifier(&f);
    for key in [&f.ed, &f.ec] {
        let user = v.verify(&key.sign(&user_claims("7"))).await.unwrap();
        assert_eq!(user.id.get(), 7);
        assert!(!user.staff);
    }
    let staff =
        f.ed.sign(&claims("1", &["staff", "x"], Duration::from_secs(60)));
    assert!(v.verify(&staff).await.unwrap().staff);
    // A numeric subject, and an audience list containing ours.
    let numeric = with(
        user_claims("1"),
        json!({"sub": 9, "aud": ["other", DEV_AUDIENCE]}),
    );
    assert_eq!(v.verify(&f.ec.sign(&numeric)).await.unwrap().id.get(), 9);
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_reason() {
    let f = fixture();
    let v = verifier(&f);
    let good = user_claims("7");
    let now = now();
    let cases: Vec<(&str, String, Reason)> = vec![
        ("garbage", "not-a-jwt".into(), Reason::Malformed),
        (
            "bad signature: another key under the known kid",
            SigningKey::ed25519("ed-1").sign(&good),
            Reason::Signature,
        ),
        (
            "unknown kid",
            SigningKey::ed25519("stranger").sign(&good),
            Reason::UnknownKey,
        ),
        (
            "alg none",
            forged(json!({"alg": "none", "typ": "JWT"}), &good, ""),
            Reason::Algorithm,
        ),
    ];
    // The good token's claims, each case changing some (a null removes the claim).
    for (name, changes, expected) in [
        ("expired", json!({"exp": now - 3600}), Reason::Expired),
        (
            "not yet valid",
            json!({"nbf": now + 3600}),
            Reason::NotYetValid,
        ),
        (
            "wrong issuer",
            json!({"iss": "https://evil.example"}),
            Reason::Issuer,
        ),
        (
            "wrong audience",
            json!({"aud": "someone-else"}),
            Reason::Audience,
        ),
        ("no exp", json!({"exp": null}), Reason::Malformed),
        ("exp as text", json!({"exp": "tomorrow"}), Reason::Malformed),
        (
            "subject not an id",
            json!({"sub": "alice"}),
            Reason::Subject,
        ),
        ("no subject", json!({"sub": null}), Reason::Subject),
    ] {
        let token = f.ed.sign(&with(good.clone(), changes));
        assert_eq!(reason(&v, &token).await, expected, "{name}");
    }
    for (name, token, expected) in cases {
        assert_eq!(reason(&v, &token).await, expected, "{name}");
    }
    // HMAC signed with the public key (the classic key-confusion attack), under the right kid.
    let public = B64.decode(f.ed.jwk()["x"].as_str().unwrap()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("ed-1".into());
    let hmac = jsonwebtoken::encode(
        &header,
        &good,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(reason(&v, &hmac).await, Reason::Algorithm);
    let e = v.verify(&hmac).await.unwrap_err();
    assert!(e.message.contains("HMAC"), "{e}");
    // EdDSA header on the EC key's kid: the key decides the algorithm.
    let confused = forged(json!({"alg": "EdDSA", "kid": "ec-1"}), &good, "AAAA");
    assert_eq!(reason(&v, &confused).await, Reason::Algorithm);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart() {
    let f = fixture();
    let v = verifier(&f);
    assert!(v.verify(&f.ed.sign(&user_claims("1"))).await.is_ok());
    let next = SigningKey::ed25519("ed-2");
    let token = next.sign(&user_claims("2"));
    assert_eq!(reason(&v, &token).await, Reason::UnknownKey);
    std::fs::write(&f.jwks_path, jwks(&[&next]).to_string()).unwrap();
    assert_eq!(v.verify(&token).await.unwrap().id.get(), 2);
    // The retired key is gone with the set it was in.
    assert_eq!(
        reason(&v, &f.ed.sign(&user_claims("1"))).await,
        Reason::UnknownKey
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let mut f = fixture();
    f.config.min_refetch = Duration::from_secs(3600);
    let v = verifier(&f);
    v.jwks().load().await.unwrap();
    let next = SigningKey::ed25519("ed-2");
    std::fs::write(&f.jwks_path, jwks(&[&next]).to_string()).unwrap();
    // Loaded a moment ago: a new kid waits for the interval (garbage kids cannot hammer the
    // provider), and the old keys keep working meanwhile.
    assert_eq!(
        reason(&v, &next.sign(&user_claims("2"))).await,
        Reason::UnknownKey
    );
    assert!(v.verify(&f.ed.sign(&user_claims("1"))).await.is_ok());
}

#[tokio::test]
async fn keycloak_style_claims_by_configuration() {
    let mut f = fixture();
    f.config.user_claim = "preferred_username".into();
    f.config.roles_claim = "realm_access.roles".into();
    let v = verifier(&f);
    let c = with(
        user_claims("not-used"),
        json!({"preferred_username": "12", "realm_access": {"roles": ["staff"]}}),
    );
    let user = v.verify(&f.ec.sign(&c)).await.unwrap();
    assert_eq!((user.id.get(), user.staff), (12, true));
}

#[test]
fn key_sets_skip_what_cannot_sign() {
    let ed = SigningKey::ed25519("ed");
    let set = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "P-256", "use": "enc", "kid": "enc", "x": "AA", "y": "AA"},
        {"kty": "weird"},
        ed.jwk(),
    ]});
    let keys = jwks::parse_set(set.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid.as_deref(), Some("ed"));
    let only_hmac = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
    assert!(jwks::parse_set(only_hmac.to_string().as_bytes()).is_err());
}

// ------------------------------------------------------------------ the layer

type Seen = Option<Grant>;

/// The layer around a handler that reports the grant it saw and the token it would forward.
async fn call(
    layer: &AuthLayer,
    path: &str,
    headers: &[(&str, String)],
    identity: Option<&str>,
) -> (tonic::Code, Seen, Option<String>) {
    let svc = tower::service_fn(|req: http::Request<()>| async move {
        let grant = req.extensions().get::<Grant>().cloned();
        let mut out = http::HeaderMap::new();
        forward(&mut out, Some("cursos"));
        let fwd = out
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        let mut resp = http::Response::new(String::new());
        resp.extensions_mut().insert((grant, fwd));
        Ok::<_, Infallible>(resp)
    });
    let svc = tower_layer::Layer::layer(layer, svc);
    let mut req = http::Request::builder().uri(format!("http://x{path}"));
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let mut req = req.body(()).unwrap();
    if let Some(name) = identity {
        req.extensions_mut().insert(ServiceIdentity::new(name));
    }
    let resp = svc.oneshot(req).await.unwrap();
    let code = resp
        .headers()
        .get("grpc-status")
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
        .unwrap_or(tonic::Code::Ok);
    let (grant, fwd) = resp
        .extensions()
        .get::<(Seen, Option<String>)>()
        .cloned()
        .unwrap_or((None, None));
    (code, grant, fwd)
}

fn bearer_of(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[tokio::test]
async fn the_layer_authenticates_applies_roles_and_forwards_the_token() {
    let f = fixture();
    let metrics = Metrics::new();
    let layer = AuthLayer::start(Some(&f.config), &metrics).await.unwrap();
    let student = f.ed.sign(&user_claims("7"));
    let staff = f.ed.sign(&claims("1", &["staff"], Duration::from_secs(60)));
    let enroll = "/services.CursosService/Enroll";
    let insights = "/services.InsightsService/GetCourseInsights";

    // Health needs nothing.
    let (code, grant, _) = call(&layer, "/grpc.health.v1.Health/Check", &[], None).await;
    assert_eq!((code, grant.is_none()), (tonic::Code::Ok, true));
    // No token, a bad header, an expired token.
    assert_eq!(
        call(&layer, enroll, &[], None).await.0,
        tonic::Code::Unauthenticated
    );
    let basic = ("authorization", "Basic dXNlcjpwYXNz".to_string());
    assert_eq!(
        call(&layer, enroll, &[basic], None).await.0,
        tonic::Code::Unauthenticated
    );
    // A user: the grant names them; the token goes on to peers.
    let (code, grant, fwd) = call(&layer, enroll, &[bearer_of(&student)], None).await;
    assert_eq!(code, tonic::Code::Ok);
    assert_eq!(grant.unwrap().user().unwrap().id.get(), 7);
    assert_eq!(fwd.unwrap(), format!("Bearer {student}"));
    // Staff-only methods.
    assert_eq!(
        call(&layer, insights, &[bearer_of(&student)], None).await.0,
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        call(&layer, insights, &[bearer_of(&staff)], None).await.0,
        tonic::Code::Ok
    );
    // A method missing from the table is refused.
    assert_eq!(
        call(
            &layer,
            "/services.CursosService/DropTables",
            &[bearer_of(&staff)],
            None
        )
        .await
        .0,
        tonic::Code::PermissionDenied
    );
    // A service proved by the transport, without a token.
    let (code, grant, fwd) = call(&layer, insights, &[], Some("chatbot")).await;
    assert_eq!(code, tonic::Code::Ok);
    assert_eq!(grant.unwrap().caller, Caller::Service("chatbot".into()));
    assert_eq!(fwd, None);
    // Trusted network: a service names itself; an unknown name is no one.
    let named = (SERVICE_HEADER, "cpar".to_string());
    assert_eq!(
        call(&layer, enroll, &[named], None).await.0,
        tonic::Code::Ok
    );
    let stranger = (SERVICE_HEADER, "mallory".to_string());
    assert_eq!(
        call(&layer, enroll, &[stranger], None).await.0,
        tonic::Code::Unauthenticated
    );

    let text = metrics.render();
    assert!(
        text.contains(r#"aula_auth_failures_total{reason="missing"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"aula_auth_failures_total{reason="malformed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"aula_authz_denied_total{method="/services.InsightsService/GetCourseInsights"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn without_trust_in_the_network_a_service_must_be_proved() {
    let mut f = fixture();
    f.config.trust_network = false;
    let layer = AuthLayer::start(Some(&f.config), &Metrics::new())
        .await
        .unwrap();
    let named = (SERVICE_HEADER, "cpar".to_string());
    let enroll = "/services.CursosService/Enroll";
    assert_eq!(
        call(&layer, enroll, &[named], None).await.0,
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        call(&layer, enroll, &[], Some("cpar")).await.0,
        tonic::Code::Ok
    );
}

#[tokio::test]
async fn off_means_everything_passes_untouched() {
    let layer = AuthLayer::start(None, &Metrics::new()).await.unwrap();
    let (code, grant, fwd) = call(
        &layer,
        "/services.InsightsService/GetCourseInsights",
        &[],
        None,
    )
    .await;
    assert_eq!((code, grant.is_none(), fwd), (tonic::Code::Ok, true, None));
}

fn request_as(caller: Caller, id: &str) -> tonic::Request<aula_api::EnrollRequest> {
    let mut r = tonic::Request::new(aula_api::EnrollRequest {
        id_usuario: id.into(),
        id_curso: "1".into(),
    });
    r.extensions_mut().insert(Grant {
        caller,
        method: "services.CursosService/Enroll".into(),
        metrics: Metrics::new(),
    });
    r
}

#[test]
fn own_user_checks_and_fills_id_usuario() {
    let user = |id: i64, staff: bool| {
        Caller::User(Arc::new(User {
            id: UserId::from_stored(id),
            roles: vec![],
            staff,
        }))
    };
    fn field(r: &mut aula_api::EnrollRequest) -> &mut String {
        &mut r.id_usuario
    }
    let mut own = request_as(user(7, false), "7");
    assert!(own_user(&mut own, field).is_ok());
    let mut empty = request_as(user(7, false), " ");
    own_user(&mut empty, field).unwrap();
    assert_eq!(empty.get_ref().id_usuario, "7");
    let mut other = request_as(user(7, false), "8");
    let e = own_user(&mut other, field).unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("Enroll") && e.message().contains("own id_usuario"),
        "{e:?}"
    );
    assert!(own_user(&mut request_as(user(1, true), "8"), field).is_ok());
    assert!(own_user(&mut request_as(Caller::Service("cpar".into()), "8"), field).is_ok());
    // Not an id: the handler reports it as INVALID_ARGUMENT.
    assert!(own_user(&mut request_as(user(7, false), "abc"), field).is_ok());
    // Off: nothing checked, nothing filled.
    let mut off = tonic::Request::new(aula_api::EnrollRequest::default());
    own_user(&mut off, field).unwrap();
    assert_eq!(off.get_ref().id_usuario, "");

    let owned_by_8 = UserId::from_stored(8);
    assert!(may_act_on(&request_as(user(7, false), ""), owned_by_8).is_err());
    assert!(may_act_on(&request_as(user(8, false), ""), owned_by_8).is_ok());
    assert!(may_act_on(&request_as(user(1, true), ""), owned_by_8).is_ok());
}

#[test]
fn dev_keys_live_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DevKeys::in_data_dir(dir.path());
    assert!(keys
        .load()
        .unwrap_err()
        .to_string()
        .contains("aula up --auth"));
    let first = keys.load_or_create().unwrap();
    let again = keys.load_or_create().unwrap();
    assert_eq!(first.kid, again.kid);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("auth/dev-signing-key.pk8"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let set: Value = serde_json::from_slice(&std::fs::read(keys.jwks_path()).unwrap()).unwrap();
    assert_eq!(set["keys"][0]["kid"], first.kid.as_str());
    assert!(
        set.to_string().find("\"d\"").is_none(),
        "no private part in the key set"
    );
}
