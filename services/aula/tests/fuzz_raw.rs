//! Raw-bytes fuzzing of the six services' gRPC ports (issue #13), below what a generated client
//! can send: proptest draws the request body of every RPC as bytes (a well-framed message of
//! random protobuf fields, wrong wire types, lengths past the end, strings that are not UTF-8;
//! or a broken frame: a bad compressed-flag, a length past the body, a cut-off body, nothing
//! at all), plus connections that send garbage instead of HTTP/2, or the HTTP/2 preface and
//! then garbage.
//!
//! Every call must be answered (within a bound) with a status that is not INTERNAL, UNKNOWN or
//! DATA_LOSS and whose message is within the 1 KiB cap: a body that does not decode is
//! INVALID_ARGUMENT (runtime `bad_message`), not tonic's INTERNAL. Every service must still be
//! SERVING at the end.
//!
//! CI runs `AULA_FUZZ_CASES` cases (64 by default, each calling one RPC of each service and
//! sending one garbage connection); a long run:
//! `AULA_FUZZ_CASES=5000 cargo test -p aula --test fuzz_raw -- --nocapture` (RELIABILITY.md).

mod common;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use proptest::{collection::vec, prelude::*, test_runner::TestCaseError};
use std::{sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::{transport::Channel, Code};
use tower::ServiceExt as _;

/// Each service's RPCs (proto/services.proto), by the index of the service in
/// [`common::Platform::all`]: cursos, chatbot, cpar, notificacoes, insights, midia.
const RPCS: [&[&str]; 6] = [
    &[
        "/services.CursosService/GetStatus",
        "/services.CursosService/GetUserCourses",
        "/services.CursosService/GetCourseMedia",
        "/services.CursosService/AskQuestion",
        "/services.CursosService/SendNotification",
        "/services.CursosService/ListCourses",
        "/services.CursosService/GetCourse",
        "/services.CursosService/Enroll",
        "/services.CursosService/Unenroll",
    ],
    &[
        "/services.ChatbotService/GetStatus",
        "/services.ChatbotService/ResolveDuvida",
        "/services.ChatbotService/RegisterMetrics",
        "/services.ChatbotService/ResolveDuvidaStream",
    ],
    &[
        "/services.CPARService/GetStatus",
        "/services.CPARService/NotifySchedule",
        "/services.CPARService/CreateSchedule",
        "/services.CPARService/GetSchedule",
        "/services.CPARService/ListSchedules",
        "/services.CPARService/CancelSchedule",
    ],
    &[
        "/services.NotificacoesService/GetStatus",
        "/services.NotificacoesService/SendNotification",
        "/services.NotificacoesService/NotifySchedule",
        "/services.NotificacoesService/ListNotifications",
        "/services.NotificacoesService/MarkAsRead",
        "/services.NotificacoesService/SubscribeNotifications",
    ],
    &[
        "/services.InsightsService/GetStatus",
        "/services.InsightsService/RegisterMetrics",
        "/services.InsightsService/RecordInteraction",
        "/services.InsightsService/GetCourseInsights",
    ],
    &[
        "/services.MidiaConteudoService/GetStatus",
        "/services.MidiaConteudoService/GetMedia",
        "/services.MidiaConteudoService/AddMedia",
    ],
];

/// Every call is answered within this (debug build, a busy 2-core machine).
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// Appends `v` as a protobuf varint: 7 bits a byte, low bits first, the top bit set on every
/// byte but the last.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// One protobuf field as bytes: a key (any field number, any wire type, valid or not) and a
/// payload that may or may not fit it.
fn field() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![1u32..12, any::<u32>().prop_map(|n| n >> 3)],
        0u8..8,
        prop_oneof![
            4 => vec(any::<u8>(), 0..40),
            // Text fields that are not UTF-8.
            2 => Just(vec![0xff, 0xfe, 0xc3]),
            1 => Just(vec![b'1', 0, b'2']),
            1 => "[0-9]{1,20}".prop_map(String::into_bytes),
            1 => (1000usize..70_000).prop_map(|n| vec![b'9'; n]),
        ],
        any::<u64>(),
        prop::option::weighted(0.1, any::<u64>()),
    )
        .prop_map(|(number, wire, payload, value, lie)| {
            let mut out = Vec::new();
            varint((u64::from(number) << 3) | u64::from(wire), &mut out);
            match wire {
                0 => varint(value, &mut out),
                1 => out.extend_from_slice(&value.to_le_bytes()),
                5 => out.extend_from_slice(&(value as u32).to_le_bytes()),
                2 => {
                    // Sometimes a length that is not the payload's.
                    varint(lie.unwrap_or(payload.len() as u64), &mut out);
                    out.extend_from_slice(&payload);
                }
                // Groups (3, 4) and the unused wire types 6, 7: whatever follows.
                _ => out.extend_from_slice(&payload[..payload.len().min(8)]),
            }
            out
        })
}

#[derive(Debug, Clone)]
enum Frame {
    /// A well-formed gRPC frame around these bytes.
    Message(Vec<u8>),
    /// The 5-byte prefix as drawn (compressed-flag, length) around these bytes.
    Prefixed { flag: u8, len: u32, bytes: Vec<u8> },
    /// Bytes with no framing at all (including none).
    Bare(Vec<u8>),
    /// Two messages where one is expected.
    Twice(Vec<u8>),
}

fn frame() -> impl Strategy<Value = Frame> {
    let message = prop_oneof![
        6 => vec(field(), 0..6).prop_map(|f| f.concat()),
        1 => vec(any::<u8>(), 0..300),
        // Nested length-delimited fields, deeper than prost's recursion limit.
        1 => (50usize..200).prop_map(|depth| {
            let mut m = Vec::new();
            for _ in 0..depth {
                let mut outer = vec![0x0a];
                varint(m.len() as u64, &mut outer);
                outer.extend_from_slice(&m);
                m = outer;
            }
            m
        }),
    ];
    prop_oneof![
        6 => message.clone().prop_map(Frame::Message),
        2 => (0u8..4, prop_oneof![0u32..64, any::<u32>()], vec(any::<u8>(), 0..64))
            .prop_map(|(flag, len, bytes)| Frame::Prefixed { flag, len, bytes }),
        1 => vec(any::<u8>(), 0..8).prop_map(Frame::Bare),
        1 => message.prop_map(Frame::Twice),
    ]
}

fn framed(f: &Frame) -> Vec<u8> {
    let wrap = |flag: u8, len: u32, bytes: &[u8]| {
        let mut out = vec![flag];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        out
    };
    match f {
        Frame::Message(m) => wrap(0, m.len() as u32, m),
        Frame::Prefixed { flag, len, bytes } => wrap(*flag, *len, bytes),
        Frame::Bare(b) => b.clone(),
        Frame::Twice(m) => [wrap(0, m.len() as u32, m), wrap(0, m.len() as u32, m)].concat(),
    }
}

/// What a connection sends instead of a proper HTTP/2 conversation.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    prop_oneof![
        vec(any::<u8>(), 0..200),
        vec(any::<u8>(), 0..200).prop_map(|b| [PREFACE, b.as_slice()].concat()),
        // The preface, then frame headers of any type and flags with random payloads.
        vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<u32>(),
                vec(any::<u8>(), 0..30)
            ),
            1..6
        )
        .prop_map(|frames| {
            let mut out = PREFACE.to_vec();
            for (kind, flags, stream, payload) in frames {
                let len = payload.len() as u32;
                out.extend_from_slice(&len.to_be_bytes()[1..]);
                out.push(kind % 10);
                out.push(flags);
                out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&payload);
            }
            out
        }),
        Just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// One RPC of each service (an index into its list, modulo its length) and its body.
    calls: Vec<(usize, Frame)>,
    /// Which service's port gets the garbage connection, and what it sends.
    garbage: (usize, Vec<u8>),
}

fn case() -> impl Strategy<Value = Case> {
    (vec((any::<usize>(), frame()), 6), (0usize..6, garbage()))
        .prop_map(|(calls, garbage)| Case { calls, garbage })
}

/// The call's gRPC status: from the headers (trailers-only) or the trailers.
async fn call(channel: Channel, path: &str, body: Vec<u8>) -> Result<(Code, String), String> {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://aula{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        // A stream that stays open (SubscribeNotifications) ends at its deadline.
        .header("grpc-timeout", "2S")
        .body(tonic::body::Body::new(Full::new(Bytes::from(body))))
        .unwrap();
    let response = channel
        .oneshot(request)
        .await
        .map_err(|e| format!("transport: {e}"))?;
    if let Some(s) = tonic::Status::from_header_map(response.headers()) {
        return Ok((s.code(), s.message().to_string()));
    }
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let s = tonic::Status::from_header_map(&trailers)
        .ok_or_else(|| "an answer without grpc-status".to_string())?;
    Ok((s.code(), s.message().to_string()))
}

/// Sends `bytes` on a fresh connection and reads until the service closes it (or a while).
async fn garbage_connection(url: &str, bytes: Vec<u8>) {
    let addr = url.trim_start_matches("http://");
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let _ = tcp.write_all(&bytes).await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        while let Ok(n) = tcp.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn one(p: Arc<common::Platform>, c: Case) -> Result<(), TestCaseError> {
    let services = p.all();
    for (i, (pick, frame)) in c.calls.into_iter().enumerate() {
        let path = RPCS[i][pick % RPCS[i].len()];
        let body = framed(&frame);
        let answer = tokio::time::timeout(ANSWER_WITHIN, call(services[i].channel(), path, body))
            .await
            .map_err(|_| {
                TestCaseError::fail(format!("{path}: no answer within {ANSWER_WITHIN:?}"))
            })?;
        let (code, message) = answer.map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
        prop_assert!(
            !matches!(code, Code::Internal | Code::Unknown | Code::DataLoss),
            "{path}: {code:?} {message:?} for {frame:?}"
        );
        prop_assert!(
            message.len() <= aula_runtime::error::MAX_MESSAGE_BYTES,
            "{path}: a {} byte message",
            message.len()
        );
    }
    let (i, bytes) = c.garbage;
    garbage_connection(&services[i].url, bytes).await;
    Ok(())
}

#[test]
fn no_body_or_connection_gets_internal_or_breaks_a_service() {
    let cases = common::run_cases_on_platform(case(), 64, 128, one);
    eprintln!(
        "{cases} cases: 6 raw calls and a garbage connection each; all answered as they should"
    );
}
