//! Structure-aware fuzzing of the REST gateway (issue #13), in front of the six real services
//! in-process: proptest picks a route (or one that does not exist, or a method it does not
//! serve) and fills its path segment, query string, headers and JSON body with what breaks
//! parsers (percent-encoded arbitrary bytes, invalid UTF-8, NUL, values of the wrong JSON type,
//! numbers past u64, deep nesting, texts past every limit, bodies past `GATEWAY_MAX_BODY`);
//! some requests are not even valid HTTP (raw bytes in the request target). Requests go over
//! plain TCP, so nothing in a client library cleans them up first.
//!
//! Every request must be answered within a bound, never with a 5xx; a refusal is a 4xx whose
//! JSON body says why (`{"erro": ...}`, at most a short quote of the input) and, for a 400,
//! names the field at fault; where the body's own checks decide (a required field missing,
//! blank or of the wrong type), the answer names exactly that field. The gateway must still
//! answer at the end. Only a request that is not HTTP at all may be answered by hyper itself
//! (a bare 400) or by closing the connection.
//!
//! CI runs `AULA_FUZZ_CASES` cases (200 by default, a few seconds); a long run:
//! `AULA_FUZZ_CASES=20000 cargo test -p aula --test fuzz_gateway -- --nocapture`
//! (its count is in RELIABILITY.md).

mod common;

use common::attacker_text;
use proptest::{collection::vec, prelude::*, test_runner::TestCaseError};
use serde_json::{Map, Value};
use std::{net::SocketAddr, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The gateway's body limit in this test (small, so bodies past it are cheap to send).
const MAX_BODY: usize = 64 << 10;
/// Every request is answered within this (debug build, a busy 2-core machine).
const ANSWER_WITHIN: Duration = Duration::from_secs(20);
/// The longest `erro` text: the services' 1 KiB cap plus the gateway's own words.
const MAX_ERROR_BYTES: usize = 1536;

/// How a route reads its JSON body.
#[derive(Debug, Clone, Copy)]
enum BodyRule {
    /// A GET: whatever is sent is not read.
    Ignored,
    /// The POST forms of the seed's GET routes: empty is `{}`; these optional fields.
    Optional(&'static [&'static str]),
    /// A JSON object with these fields required (present, text, not blank), then these
    /// optional ones (text or a non-negative integer).
    Required(&'static [&'static str], &'static [&'static str]),
}

#[derive(Debug)]
struct Route {
    method: &'static str,
    /// `{}` is the path segment the route takes.
    path: &'static str,
    /// The field the path segment becomes.
    id_field: Option<&'static str>,
    body: BodyRule,
    /// Reads `?message=`.
    query: bool,
}

/// A GET route (whatever body is sent is not read).
const fn get(path: &'static str, id_field: Option<&'static str>) -> Route {
    Route {
        method: "GET",
        path,
        id_field,
        body: BodyRule::Ignored,
        query: false,
    }
}

/// The POST form of one of the seed's GET routes: an empty body is `{}`; `optional` fields.
const fn post_form(
    path: &'static str,
    id_field: Option<&'static str>,
    optional: &'static [&'static str],
) -> Route {
    post(path, id_field, BodyRule::Optional(optional))
}

/// A POST route reading its body as `body` says.
const fn post(path: &'static str, id_field: Option<&'static str>, body: BodyRule) -> Route {
    Route {
        method: "POST",
        path,
        id_field,
        body,
        query: false,
    }
}

/// Every route the gateway serves, and a few it does not.
static ROUTES: &[Route] = &[
    get("/cursos", None),
    get("/cursos/ver_inscricoes_do_usuario/{}", Some("id_usuario")),
    get("/cursos/consumir_midia_curso/{}", Some("id_curso")),
    post(
        "/cursos/tirar_duvida/{}",
        Some("id_curso"),
        BodyRule::Required(&["aula_contexto", "duvida"], &["id_usuario"]),
    ),
    Route {
        query: true,
        ..get("/cursos/enviar_notificacao/{}", Some("id_usuario"))
    },
    post_form(
        "/cursos/enviar_notificacao/{}",
        Some("id_usuario"),
        &["message"],
    ),
    get("/chatbot", None),
    post(
        "/chatbot/duvida",
        None,
        BodyRule::Required(&["aula_contexto", "duvida"], &["id_curso", "id_usuario"]),
    ),
    get("/chatbot/registrar_metricas/{}", Some("id_interacao")),
    post_form("/chatbot/registrar_metricas/{}", Some("id_interacao"), &[]),
    get("/cpar", None),
    get("/cpar/notificar_agendamento/{}", Some("id_agendamento")),
    post_form(
        "/cpar/notificar_agendamento/{}",
        Some("id_agendamento"),
        &[],
    ),
    get("/notificacoes", None),
    get("/insights", None),
    get("/midia_conteudo", None),
    get("/midia_conteudo/{}", Some("id_curso")),
    get("/healthz", None),
    get("/livez", None),
    get("/readyz", None),
    // Not routes: 404, whatever follows.
    get("/cursos/nao_existe/{}", None),
    post("/{}", None, BodyRule::Ignored),
];

/// The field names any body may carry (known ones and strangers).
const FIELDS: &[&str] = &[
    "aula_contexto",
    "duvida",
    "id_usuario",
    "id_curso",
    "message",
    "",
    "\u{0}",
    "ÿ",
];

/// A JSON value of any type, text most often.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => attacker_text().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((attacker_text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    None,
    /// An object with some of the known fields (and strangers), each of any type.
    Object(Vec<(String, Value)>),
    /// Some other JSON value (an array, a number, a string).
    Json(Value),
    /// Text that is JSON-like but not JSON: numbers past f64, deep nesting, lone surrogates,
    /// trailing garbage, NUL.
    Text(String),
    /// Arbitrary bytes (invalid UTF-8 most of the time).
    Bytes(Vec<u8>),
    /// A valid object whose text field makes the body `n` bytes long (past the limit often).
    Huge(usize),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => Just(Body::None),
        5 => vec((prop::sample::select(FIELDS).prop_map(str::to_string), json_value()), 0..5)
            .prop_map(Body::Object),
        1 => json_value().prop_map(Body::Json),
        2 => prop_oneof![
            Just("{\"duvida\": 1e999}".to_string()),
            Just("{\"aula_contexto\": \"\\ud800\", \"duvida\": \"x\"}".to_string()),
            Just("{\"aula_contexto\": \"a\", \"duvida\": \"b\"} trailing".to_string()),
            Just("{\"aula_contexto\": \"a\u{0}\", \"duvida\": \"\\u0000\"}".to_string()),
            Just("{\"id_usuario\": 18446744073709551616, \"aula_contexto\": \"a\", \"duvida\": \"b\"}".to_string()),
            (1usize..400).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
            (1usize..400).prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
            "[\\PC]{0,60}",
        ]
        .prop_map(Body::Text),
        1 => vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
        1 => (MAX_BODY - 100..MAX_BODY + 5000).prop_map(Body::Huge),
    ]
}

#[derive(Debug, Clone)]
struct Fuzzed {
    route: usize,
    /// Another method than the route's (405 for a route that exists).
    method: Option<&'static str>,
    /// The path segment's bytes, percent-encoded when sent.
    segment: Vec<u8>,
    /// Sent as is (characters valid in a URL, `%` escapes possibly broken).
    raw_suffix: String,
    query: Vec<(String, Vec<u8>)>,
    body: Body,
    content_type: Option<&'static str>,
    chunked: bool,
    /// When set, the whole request target is these bytes instead (not valid HTTP, mostly).
    raw_target: Option<Vec<u8>>,
}

fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[0-9]{1,3}".prop_map(String::into_bytes),
        2 => attacker_text().prop_map(String::into_bytes),
        2 => vec(any::<u8>(), 0..40),
        1 => Just(b"\0".to_vec()),
        1 => Just(b"..".to_vec()),
        1 => Just(b"1/2".to_vec()),
        1 => (1000usize..20000).prop_map(|n| vec![b'9'; n]),
    ]
}

fn fuzzed() -> impl Strategy<Value = Fuzzed> {
    (
        (
            0..ROUTES.len(),
            prop::option::weighted(
                0.1,
                prop::sample::select(
                    &["PUT", "DELETE", "PATCH", "POST", "GET", "OPTIONS", "FOO"][..],
                ),
            ),
            segment(),
            prop::option::weighted(0.15, "[A-Za-z0-9%._~!$&'()*+,;=:@/-]{0,30}"),
        ),
        vec(
            (
                prop_oneof![Just("message".to_string()), "[a-z%=&]{0,8}"],
                prop_oneof![
                    attacker_text().prop_map(String::into_bytes),
                    vec(any::<u8>(), 0..30)
                ],
            ),
            0..3,
        ),
        body(),
        prop::option::of(prop::sample::select(
            &[
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/json; charset=latin1",
            ][..],
        )),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.05, vec(any::<u8>(), 0..60)),
    )
        .prop_map(
            |(
                (route, method, segment, raw_suffix),
                query,
                body,
                content_type,
                chunked,
                raw_target,
            )| Fuzzed {
                route,
                method,
                segment,
                raw_suffix: raw_suffix.unwrap_or_default(),
                query,
                body,
                content_type,
                chunked,
                raw_target,
            },
        )
}

fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

fn body_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::None => Vec::new(),
        Body::Object(fields) => {
            serde_json::to_vec(&fields.iter().cloned().collect::<Map<_, _>>()).unwrap()
        }
        Body::Json(v) => serde_json::to_vec(v).unwrap(),
        Body::Text(t) => t.clone().into_bytes(),
        Body::Bytes(b) => b.clone(),
        Body::Huge(n) => {
            let head = br#"{"aula_contexto":"a","duvida":"b","message":""#;
            let mut v = head.to_vec();
            v.resize(n.saturating_sub(2).max(head.len()), b'x');
            v.extend_from_slice(b"\"}");
            v
        }
    }
}

struct Sent {
    request: Vec<u8>,
    /// The request line is what a client library would send (hyper reaches the router).
    valid_http: bool,
    body_len: usize,
    /// The gateway answers without reading the whole body (see [`one`]).
    unread_body: bool,
}

fn build(f: &Fuzzed) -> Sent {
    let r = &ROUTES[f.route];
    let method = f.method.unwrap_or(r.method);
    let body = body_bytes(&f.body);
    let (target, valid_http) = match &f.raw_target {
        Some(raw) => (raw.clone(), false),
        None => {
            let mut target = Vec::new();
            let (before, after) = r.path.split_once("{}").unwrap_or((r.path, ""));
            target.extend_from_slice(before.as_bytes());
            if r.path.contains("{}") {
                percent_encode(&f.segment, &mut target);
            }
            target.extend_from_slice(after.as_bytes());
            target.extend_from_slice(f.raw_suffix.as_bytes());
            if !f.query.is_empty() {
                target.push(b'?');
                for (i, (k, v)) in f.query.iter().enumerate() {
                    if i > 0 {
                        target.push(b'&');
                    }
                    target.extend_from_slice(k.as_bytes());
                    target.push(b'=');
                    percent_encode(v, &mut target);
                }
            }
            (target, true)
        }
    };
    let mut request = Vec::new();
    request.extend_from_slice(method.as_bytes());
    request.push(b' ');
    request.extend_from_slice(&target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n");
    if let Some(ct) = f.content_type {
        request.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
    }
    if f.chunked {
        request.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for piece in body.chunks(777) {
            request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            request.extend_from_slice(piece);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
    } else {
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(&body);
    }
    let reads_body = f.method.is_none_or(|m| m == r.method)
        && f.raw_suffix.is_empty()
        && !matches!(r.body, BodyRule::Ignored);
    Sent {
        request,
        valid_http,
        body_len: body.len(),
        unread_body: !body.is_empty() && (!reads_body || body.len() > MAX_BODY),
    }
}

/// What the route's own body checks refuse, and the word the refusal must contain: the
/// field at fault, in the order the handler checks them.
fn body_refusal(rule: BodyRule, body: &[u8]) -> Option<&'static str> {
    let (required, optional): (&[&str], &[&str]) = match rule {
        BodyRule::Ignored => return None,
        BodyRule::Optional(_) if body.iter().all(u8::is_ascii_whitespace) => return None,
        BodyRule::Optional(fields) => (&[], fields),
        BodyRule::Required(..) if body.iter().all(u8::is_ascii_whitespace) => {
            return Some("missing")
        }
        BodyRule::Required(required, optional) => (required, optional),
    };
    let object = match serde_json::from_slice::<Value>(body) {
        Err(_) => return Some("JSON"),
        Ok(Value::Object(o)) => o,
        Ok(_) => return Some("object"),
    };
    for field in required {
        match object.get(*field) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => return Some(*field),
        }
    }
    for field in optional {
        match object.get(*field) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(Value::Number(n)) if n.is_u64() => {}
            _ => return Some(*field),
        }
    }
    None
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// The answer's status and body (chunked or not); `None` when the connection closed first.
fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = raw[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let (mut rest, mut out) = (&body[..], Vec::new());
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(nl + 2..nl + 2 + size)?);
            rest = rest.get(nl + 4 + size..)?;
        }
        body = out;
    }
    Some(Answer { status, body })
}

async fn exchange(addr: SocketAddr, request: Vec<u8>) -> Result<Vec<u8>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = tcp.into_split();
    // Written alongside the read: the gateway may answer (413) before taking the whole body.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&request).await;
        let _ = wr.flush().await;
        wr
    });
    let mut answer = Vec::new();
    let read = rd.read_to_end(&mut answer).await;
    drop(writer.await);
    match read {
        // A reset after the answer arrived (the gateway closed with the body still coming).
        Ok(_) => Ok(answer),
        Err(_) if !answer.is_empty() => Ok(answer),
        Err(e) => Err(format!("read: {e}")),
    }
}

async fn one(addr: SocketAddr, f: Fuzzed) -> Result<(), TestCaseError> {
    let r = &ROUTES[f.route];
    let sent = build(&f);
    let what = String::from_utf8_lossy(&sent.request[..sent.request.len().min(300)]).into_owned();
    let raw = match tokio::time::timeout(ANSWER_WITHIN, exchange(addr, sent.request)).await {
        Err(_) => {
            return Err(TestCaseError::fail(format!(
                "no answer within {ANSWER_WITHIN:?}: {what}"
            )))
        }
        // Not HTTP: hyper may close at once. A body left unread (a 413, a GET, a 404 or 405):
        // the gateway answered and closed while it was still coming, and the kernel's reset
        // can discard the answer before it is read.
        Ok(Err(_)) if !sent.valid_http || sent.unread_body => return Ok(()),
        Ok(Err(e)) => return Err(TestCaseError::fail(format!("{e}: {what}"))),
        Ok(Ok(raw)) => raw,
    };
    let Some(answer) = parse_answer(&raw) else {
        if !sent.valid_http || (raw.is_empty() && sent.unread_body) {
            return Ok(());
        }
        return Err(TestCaseError::fail(format!(
            "no HTTP answer ({} bytes: {:?}): {what}",
            raw.len(),
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        )));
    };
    prop_assert!(
        answer.status < 500,
        "{} {}: {what}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    if !sent.valid_http {
        return Ok(());
    }
    // Everything the gateway answers is JSON; a refusal says why, briefly.
    let json: Value = serde_json::from_slice(&answer.body).map_err(|e| {
        TestCaseError::fail(format!(
            "{} with a body that is not JSON ({e}): {:?}: {what}",
            answer.status,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
        ))
    })?;
    if answer.status < 400 {
        return Ok(());
    }
    let erro = json["erro"].as_str().unwrap_or_default();
    prop_assert!(
        !erro.is_empty(),
        "{} without erro: {json}: {what}",
        answer.status
    );
    prop_assert!(
        erro.len() <= MAX_ERROR_BYTES,
        "{} with a {} byte erro: {what}",
        answer.status,
        erro.len()
    );
    let routed = f.method.is_none_or(|m| m == r.method) && f.raw_suffix.is_empty();
    if !routed || answer.status != 400 {
        return Ok(());
    }
    let body = body_bytes(&f.body);
    let segment_is_text = r.id_field.is_none() || std::str::from_utf8(&f.segment).is_ok();
    if sent.body_len <= MAX_BODY && segment_is_text {
        if let Some(word) = body_refusal(r.body, &body) {
            prop_assert!(
                erro.contains(word),
                "400 {erro:?} does not name {word:?}: {what}"
            );
            return Ok(());
        }
    }
    // Refused by the path, the query or the service: the answer names a field.
    let mut names: Vec<&str> = r.id_field.into_iter().collect();
    if r.query {
        names.push("message");
    }
    if let BodyRule::Required(a, b) = r.body {
        names.extend(a.iter().chain(b));
    }
    if let BodyRule::Optional(a) = r.body {
        names.extend(a.iter());
    }
    prop_assert!(
        names.iter().any(|n| erro.contains(n)),
        "400 {erro:?} names none of {names:?}: {what}"
    );
    Ok(())
}

#[test]
fn no_request_gets_a_5xx_or_breaks_the_gateway() {
    let rt = common::runtime();
    let (platform, gw) = rt.block_on(async {
        let platform = common::spawn_platform().await;
        let settings = common::pairs(&[
            ("GATEWAY_DRAIN_DELAY", "0s"),
            ("GATEWAY_RATE_LIMIT", "off"),
            ("GATEWAY_MAX_BODY", "64KiB"),
            ("AULA_METRICS_LISTEN", "off"),
        ]);
        let gw = platform.start_gateway(&settings, None).await;
        (platform, gw)
    });
    let addr = gw.addr();
    let cases = common::run_cases(&rt, fuzzed(), 200, 256, |f| one(addr, f));
    // Still up, and still answering through to the services.
    rt.block_on(async {
        for path in ["/livez", "/cursos", "/cursos/ver_inscricoes_do_usuario/1"] {
            let raw = exchange(
                addr,
                format!("GET {path} HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n").into_bytes(),
            )
            .await
            .unwrap();
            let answer = parse_answer(&raw).unwrap();
            assert_eq!(
                answer.status,
                200,
                "{path}: {}",
                String::from_utf8_lossy(&answer.body)
            );
        }
        platform.assert_serving().await;
        gw.stop().await.unwrap();
    });
    eprintln!("{cases} requests to the gateway; every one answered as it should");
}
