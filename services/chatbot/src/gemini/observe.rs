//! What every Gemini call records: its outcome, its duration and the tokens it used.

use std::time::Instant;

/// Counts one call (`aula_gemini_requests_total` by outcome), times it and adds its tokens.
pub(super) fn record_call(
    outcome: &'static str,
    started: Instant,
    tokens_in: u32,
    tokens_out: u32,
) {
    metrics::counter!("aula_gemini_requests_total", "outcome" => outcome).increment(1);
    metrics::histogram!("aula_gemini_request_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    if tokens_in > 0 {
        metrics::counter!("aula_gemini_tokens_total", "direction" => "input")
            .increment(u64::from(tokens_in));
    }
    if tokens_out > 0 {
        metrics::counter!("aula_gemini_tokens_total", "direction" => "output")
            .increment(u64::from(tokens_out));
    }
}
