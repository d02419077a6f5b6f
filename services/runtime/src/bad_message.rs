//! A request whose body is not a message of the method's type is the caller's error: the
//! answer is INVALID_ARGUMENT, not INTERNAL.
//!
//! tonic decodes the request before any handler runs, and answers a body it cannot decode
//! with INTERNAL, as gRPC's status-code table lists for "error parsing request proto" (and
//! as its compression spec requires for a compressed-flag without `grpc-encoding`). To a
//! caller, to our alerts (INTERNAL counts as a server error) and to issue #13's rule "bad
//! input is never INTERNAL", these are bad input like any other: invalid protobuf, a string
//! field that is not UTF-8, a unary call without its message, a frame cut short, an invalid
//! compressed-flag. [`BadMessageLayer`] rewrites exactly those answers of tonic's (recognised
//! by tonic's own words, in a trailers-only response, before any handler ran) to
//! INVALID_ARGUMENT keeping tonic's description, which names the field where prost knows it:
//! `request: not a valid message (failed to decode Protobuf message:
//! AskQuestionRequest.id_curso: invalid string value: data is not UTF-8 encoded)`.
//! A handler's own INTERNAL ("internal error") is never touched. Found by
//! `services/aula/tests/fuzz_raw.rs`.

use futures::{future::MapOk, TryFutureExt as _};
use std::task::{Context, Poll};
use tonic::Code;

/// The beginnings of tonic's INTERNAL answers to a request body it could not decode.
const TONIC_DECODE_ERRORS: &[&str] = &[
    "failed to decode Protobuf message",
    "Missing request message.",
    "Unexpected EOF decoding stream.",
    "protocol error: received message with",
];

/// The server layer mapping tonic's decode failures to INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy, Default)]
pub struct BadMessageLayer;

middleware!(BadMessageLayer => BadMessageService, stateless);

impl<S, B, R> tower_service::Service<http::Request<B>> for BadMessageService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    // No allocation per call: the answer is looked at once it is there.
    type Future = MapOk<S::Future, fn(http::Response<R>) -> http::Response<R>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.inner.call(req).map_ok(rewritten::<R> as fn(_) -> _)
    }
}

fn rewritten<R>(mut response: http::Response<R>) -> http::Response<R> {
    rewrite(response.headers_mut());
    response
}

/// Rewrites a trailers-only answer of tonic's decoder, in place: INTERNAL for a body that is
/// not the message to INVALID_ARGUMENT, OUT_OF_RANGE for an oversized one to
/// RESOURCE_EXHAUSTED. The cheap test first: almost every answer is neither.
fn rewrite(headers: &mut http::HeaderMap) {
    let Some(status) = headers.get("grpc-status") else {
        return;
    };
    match Code::from_bytes(status.as_bytes()) {
        Code::Internal => not_the_message(headers),
        Code::OutOfRange => oversized(headers),
        _ => {}
    }
}

fn not_the_message(headers: &mut http::HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    if !TONIC_DECODE_ERRORS
        .iter()
        .any(|p| status.message().starts_with(p))
    {
        return;
    }
    let replaced = crate::error::capped(
        Code::InvalidArgument,
        format!("request: not a valid message ({})", status.message()),
    );
    headers.remove("grpc-message");
    headers.remove("grpc-status-details-bin");
    if replaced.add_header(headers).is_err() {
        // Cannot happen for a status built from text; leave tonic's answer as it was.
        tracing::warn!("could not rewrite a decode error's status");
    }
}

/// tonic's OUT_OF_RANGE for a request over `AULA_MAX_MESSAGE_SIZE`, as RESOURCE_EXHAUSTED
/// naming the sizes and the variable.
fn oversized(headers: &mut http::HeaderMap) {
    let Some(original) = tonic::Status::from_header_map(headers) else {
        return;
    };
    let Some(sizes) = original
        .message()
        .strip_prefix("Error, decoded message length too large: found ")
    else {
        return;
    };
    // "5242885 bytes, the limit is: 4194304 bytes"
    let (found, limit) = sizes
        .split_once(", the limit is: ")
        .unwrap_or((sizes, "the limit"));
    let status = tonic::Status::resource_exhausted(format!(
        "request message is {found}, larger than {limit} (AULA_MAX_MESSAGE_SIZE)"
    ));
    // Replaces grpc-status and grpc-message (percent-encoded as gRPC wants).
    let _ = status.add_header(headers);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `status` as a client sees it after [`rewrite`] went over its trailers.
    fn rewritten(status: tonic::Status) -> tonic::Status {
        let mut h = http::HeaderMap::new();
        status.add_header(&mut h).unwrap();
        rewrite(&mut h);
        tonic::Status::from_header_map(&h).unwrap()
    }

    #[test]
    fn decode_errors_become_invalid_argument_and_nothing_else_changes() {
        let s = rewritten(tonic::Status::internal(
            "failed to decode Protobuf message: X.id: invalid string value: data is not UTF-8 encoded",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("X.id: invalid string value"), "{s:?}");
        let s = rewritten(tonic::Status::internal("Missing request message."));
        assert_eq!(s.code(), Code::InvalidArgument);
        // A handler's own INTERNAL, and other codes, stay as they are.
        for s in [
            tonic::Status::internal("internal error"),
            tonic::Status::unavailable("failed to decode Protobuf message"),
        ] {
            let after = rewritten(s.clone());
            assert_eq!((after.code(), after.message()), (s.code(), s.message()));
        }
    }

    #[test]
    fn an_oversized_request_is_resource_exhausted_naming_the_limit() {
        let back = rewritten(tonic::Status::out_of_range(
            "Error, decoded message length too large: found 5242885 bytes, the limit is: 4194304 bytes",
        ));
        assert_eq!(back.code(), Code::ResourceExhausted);
        assert_eq!(
            back.message(),
            "request message is 5242885 bytes, larger than 4194304 bytes (AULA_MAX_MESSAGE_SIZE)"
        );
        // Anything else passes untouched.
        let back = rewritten(tonic::Status::out_of_range("page 9"));
        assert_eq!(back.code(), Code::OutOfRange);
    }
}
