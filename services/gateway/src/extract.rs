//! The path segment and the query string as handlers take them. axum's own extractors refuse
//! bad ones with a plain-text 400 that names no field (`Invalid URL: Invalid UTF-8 in `id``);
//! these answer like every other refusal: JSON `{"erro": ...}` naming the field, quoting at
//! most a short prefix of what was sent. (Found by `services/aula/tests/fuzz_gateway.rs`.)

use crate::error::ApiError;
use axum::extract::{path::ErrorKind, rejection::PathRejection, FromRequestParts, Path, Query};
use http::request::Parts;
use serde::de::DeserializeOwned;

/// How much of a parser's complaint an answer quotes.
const COMPLAINT_CHARS: usize = 200;

/// The route's one path segment (`{id}`), percent-decoded, or why it could not be read:
/// handlers turn it into text with [`segment`], which names the field it becomes.
pub type Segment = Result<Path<String>, PathRejection>;

/// The path segment as the text of `field`, or a 400 naming `field`.
pub fn segment(field: &str, segment: Segment) -> Result<String, ApiError> {
    match segment {
        Ok(Path(text)) => Ok(text),
        Err(PathRejection::FailedToDeserializePathParams(e))
            if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
        {
            Err(ApiError::BadRequest(format!(
                "{field}: the path segment is not valid UTF-8 once percent-decoded"
            )))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "{field}: invalid path: {}",
            clip(&e.body_text())
        ))),
    }
}

/// A query string deserialized into `T`; a refusal names the parameters `T` reads.
pub struct QueryOf<T>(pub T);

/// The query parameters a route reads, for its refusals.
pub trait QueryFields {
    const FIELDS: &'static str;
}

impl<S, T> FromRequestParts<S> for QueryOf<T>
where
    S: Send + Sync,
    T: DeserializeOwned + QueryFields + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "invalid query string ({}): {}",
                    T::FIELDS,
                    clip(&e.body_text())
                ))
            })
    }
}

fn clip(text: &str) -> String {
    let cut = aula_runtime::fields::clip(text, COMPLAINT_CHARS);
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut.to_string()
    }
}

/// A request's path (or method) as an error message quotes it: short ones whole, long ones
/// cut, control characters escaped.
pub fn quoted(text: &str) -> String {
    if text.chars().count() <= COMPLAINT_CHARS && !text.chars().any(char::is_control) {
        text.to_string()
    } else {
        aula_runtime::fields::quote(text)
    }
}
