//! The generator's unit tests: the schedule, the figures, the requests and their outcomes.

use super::{
    call::{outcome_of, Call},
    conn::Protocol,
    schedule::Schedule,
    stats::Stats,
};
use http::{HeaderMap, HeaderValue, Method, Uri};
use std::{collections::BTreeMap, time::Duration};
fn schedule(rate: f64, warmup_ms: u64, measured_ms: u64) -> Schedule {
    Schedule::new(
        rate,
        Duration::from_millis(warmup_ms),
        Duration::from_millis(measured_ms),
    )
    .unwrap()
}

#[test]
fn calls_are_due_at_fixed_intervals_without_drift() {
    let s = schedule(10_000.0, 0, 1000);
    assert_eq!(s.due(0), 0);
    assert_eq!(s.due(1), 100_000);
    assert_eq!(s.due(10_000), 1_000_000_000);
    // The ten-millionth call is due at exactly 1000 s: nothing accumulates.
    assert_eq!(s.due(10_000_000), 1_000_000_000_000);
    // A rate that does not divide a second: each interval within a nanosecond of 1/rate.
    let s = schedule(7_919.0, 0, 1000);
    let exact = 1e9 / 7_919.0;
    assert!((1..10_000).all(|n| ((s.due(n) - s.due(n - 1)) as f64 - exact).abs() <= 1.0));
    assert!((s.due(7_919_000) as f64 - 1e12).abs() <= 1.0);
}

#[test]
fn warmup_and_window_split_the_calls() {
    // 5,000/s: 1 s of warm-up is calls 0..5000, 10 s measured are 5000..55000.
    let s = schedule(5_000.0, 1000, 10_000);
    assert_eq!(s.first_measured(), 5_000);
    assert_eq!(s.total(), 55_000);
    assert_eq!(s.due(s.first_measured()), s.window_start());
    assert!(s.due(s.first_measured() - 1) < s.window_start());
    assert!(s.due(s.total() - 1) < s.window_start() + 10_000_000_000);
    // A rate that does not divide the spans: still every call due inside its span.
    for rate in [3.0, 7_919.0, 12_345.6] {
        let s = schedule(rate, 700, 1_300);
        let (first, total) = (s.first_measured(), s.total());
        assert!(s.due(first) >= s.window_start(), "{rate}");
        assert!(first == 0 || s.due(first - 1) < s.window_start(), "{rate}");
        assert!(s.due(total - 1) < 2_000_000_000, "{rate}");
        assert!(s.due(total) >= 2_000_000_000, "{rate}");
    }
    // No warm-up: the first call is measured.
    assert_eq!(schedule(200.0, 0, 10_000).first_measured(), 0);
    assert_eq!(schedule(200.0, 0, 10_000).total(), 2_000);
}

#[test]
fn only_positive_finite_rates_and_a_window() {
    let s = |r: f64, m: u64| Schedule::new(r, Duration::ZERO, Duration::from_millis(m));
    assert!(s(0.0, 10).is_none());
    assert!(s(-1.0, 10).is_none());
    assert!(s(f64::NAN, 10).is_none());
    assert!(s(f64::INFINITY, 10).is_none());
    assert!(s(10.0, 0).is_none());
    assert!(s(10.0, 10).is_some());
}

#[test]
fn latency_counts_from_the_due_time_and_rates_from_what_happened() {
    let s = schedule(1_000.0, 1000, 1000);
    let mut st = Stats::default();
    // 1,000 measured calls due 1 ms apart from 1 s, each sent 20 us late; call i answered
    // (i % 100 + 1) * 10 us after its due time; call 999 failed.
    for i in 0..1000u64 {
        let due = s.due(s.first_measured() + i);
        st.sent_at(due, due + 20_000);
        let outcome = if i == 999 {
            Err("Unavailable".to_string())
        } else {
            Ok(())
        };
        st.done(due, due + (i % 100 + 1) * 10_000, outcome);
    }
    st.dropped = 5;
    let r = st.report(
        &s,
        Protocol::Http2,
        8,
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    assert_eq!((r.sent, r.scheduled, r.dropped), (1000, 1005, 5));
    assert_eq!(
        (r.ok, r.error_count(), r.completed, r.unfinished),
        (999, 1, 1000, 0)
    );
    assert_eq!(r.errors, BTreeMap::from([("Unavailable".to_string(), 1)]));
    // 10 us .. 1000 us, ten of each: below 2048 us HdrHistogram is exact.
    assert_eq!((r.p50_ms, r.p90_ms, r.p99_ms), (0.5, 0.9, 0.99));
    assert_eq!(r.max_ms, 1.0);
    assert_eq!(
        (r.lag_p50_us, r.lag_p99_us, r.lag_max_us, r.late_1ms),
        (20, 20, 20, 0)
    );
    // Sent 1 ms apart; all answered within the 1 s window.
    assert!((r.sent_rate - 1000.0).abs() < 1e-6, "{}", r.sent_rate);
    assert!((r.rate - 1000.0).abs() < 1e-6, "{}", r.rate);
    assert!((r.cpu_pct - 15.0).abs() < 1e-9);
    // Had the last answer come 250 ms after the window, the rate is over 1.25 s.
    st.done(
        s.due(s.total() - 1),
        s.window_start() + 1_250_000_000,
        Ok(()),
    );
    let r = st.report(
        &s,
        Protocol::Http2,
        8,
        Duration::ZERO,
        Duration::from_secs(2),
    );
    assert!((r.rate - 1001.0 / 1.25).abs() < 1e-6, "{}", r.rate);
}

#[test]
fn a_stalled_client_is_charged_not_excused() {
    // Ten calls due 100 us apart all went out 5 ms after the first was due (the generator
    // stalled): each counts from its own due time, and the lag says they were late.
    let s = schedule(10_000.0, 0, 1);
    let mut st = Stats::default();
    for n in 0..10 {
        let due = s.due(n);
        st.sent_at(due, 5_000_000);
        st.done(due, 5_100_000, Ok(()));
    }
    let r = st.report(
        &s,
        Protocol::Http2,
        1,
        Duration::ZERO,
        Duration::from_secs(1),
    );
    // Above 2048 us a value is kept to 3 significant digits (5,100 us is 5,103's bucket).
    assert!((r.max_ms - 5.1).abs() < 0.005, "{}", r.max_ms);
    assert!(r.p50_ms >= 4.6, "{}", r.p50_ms);
    assert_eq!(r.late_1ms, 10);
    assert!(r.lag_max_us >= 5000 - 1, "{}", r.lag_max_us);
}

#[test]
fn nothing_answered_reports_zeros_and_unfinished() {
    let s = schedule(100.0, 0, 1000);
    let mut st = Stats::default();
    st.sent_at(0, 10);
    let r = st.report(
        &s,
        Protocol::Http1,
        1,
        Duration::ZERO,
        Duration::from_secs(1),
    );
    assert_eq!((r.ok, r.completed, r.unfinished), (0, 0, 1));
    assert_eq!(
        (r.rate, r.sent_rate, r.p99_ms, r.max_ms),
        (0.0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn tsv_has_one_key_per_line_and_every_error_kind() {
    let s = schedule(100.0, 0, 1000);
    let mut st = Stats::default();
    st.sent_at(0, 0);
    st.done(0, 2_000, Err("ResourceExhausted".into()));
    st.sent_at(10_000_000, 10_000_000);
    st.done(10_000_000, 10_300_000, Ok(()));
    let tsv = st
        .report(
            &s,
            Protocol::Http1,
            2,
            Duration::ZERO,
            Duration::from_secs(1),
        )
        .tsv();
    let kv: BTreeMap<&str, &str> = tsv
        .lines()
        .map(|l| l.split_once('\t').expect("key<TAB>value"))
        .collect();
    assert_eq!(kv.len(), tsv.lines().count(), "a key twice: {tsv}");
    assert_eq!(kv["asked_rate"], "100");
    assert_eq!(kv["ok"], "1");
    assert_eq!(kv["errors"], "1");
    assert_eq!(kv["errors.ResourceExhausted"], "1");
    assert_eq!(kv["p50_ms"], "0.300");
    assert_eq!(kv["connections"], "2");
    assert_eq!(kv["protocol"], "http1");
    for key in [
        "rate",
        "sent_rate",
        "dropped",
        "unfinished",
        "p99_ms",
        "lag_p99_us",
        "cpu_pct",
    ] {
        assert!(kv.contains_key(key), "{key}: {tsv}");
    }
}

#[test]
fn grpc_status_from_trailers_or_a_trailers_only_answer() {
    let ok = http::StatusCode::OK;
    let with = |code: &str| {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_str(code).unwrap());
        h
    };
    let none = HeaderMap::new();
    assert_eq!(outcome_of(ok, &none, Some(&with("0")), true), Ok(()));
    assert_eq!(
        outcome_of(ok, &none, Some(&with("8")), true),
        Err("ResourceExhausted".into())
    );
    // Trailers-only: the status is in the headers.
    assert_eq!(
        outcome_of(ok, &with("14"), None, true),
        Err("Unavailable".into())
    );
    assert_eq!(
        outcome_of(ok, &none, None, true),
        Err("no_grpc_status".into())
    );
    assert_eq!(
        outcome_of(ok, &none, Some(&with("42")), true),
        Err("grpc_42".into())
    );
    let unavailable = http::StatusCode::SERVICE_UNAVAILABLE;
    assert_eq!(
        outcome_of(unavailable, &none, None, false),
        Err("http_503".into())
    );
    assert_eq!(outcome_of(ok, &none, None, false), Ok(()));
}

#[test]
fn a_request_is_prepared_for_each_protocol() {
    let url: Uri = "http://127.0.0.1:51051/services.CursosService/GetUserCourses"
        .parse()
        .unwrap();
    let call = Call::grpc(&url, b"\x0a\x011", Duration::from_secs(5));
    assert_eq!(&call.body[..], b"\x00\x00\x00\x00\x03\x0a\x011");
    let h2 = call.request(true);
    assert_eq!(h2.uri(), &url);
    assert_eq!(h2.method(), Method::POST);
    assert_eq!(h2.headers()["content-type"], "application/grpc");
    assert_eq!(h2.headers()["te"], "trailers");
    assert_eq!(h2.headers()["grpc-timeout"], "5000m");
    assert!(h2.headers().get("host").is_none());
    let get: Uri = "http://127.0.0.1:51080/cursos/ver_inscricoes_do_usuario/1?x=1"
        .parse()
        .unwrap();
    let h1 = Call::get(&get).request(false);
    assert_eq!(h1.uri(), "/cursos/ver_inscricoes_do_usuario/1?x=1");
    assert_eq!(h1.method(), Method::GET);
    assert_eq!(h1.headers()["host"], "127.0.0.1:51080");
}
