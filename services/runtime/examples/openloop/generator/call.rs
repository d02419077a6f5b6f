//! The request every call sends, prepared once, and the outcome read from its answer.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use std::time::Duration;
/// The one request every call sends, prepared once.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    /// Absolute (HTTP/2 takes :scheme and :authority from it).
    uri: Uri,
    /// Origin form, for HTTP/1.1's request line.
    path: Uri,
    headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) grpc: bool,
}

/// gRPC's frame around a message: no compression, the length big-endian.
pub fn grpc_frame(message: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed.into()
}

impl Call {
    /// A unary gRPC call: `url` is the server and the method's path
    /// (`http://host:port/package.Service/Method`), `message` the request's protobuf bytes.
    pub fn grpc(url: &Uri, message: &[u8], timeout: Duration) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        // The server gives up when the generator does (milliseconds, as tonic sends it).
        headers.insert(
            "grpc-timeout",
            HeaderValue::from_str(&format!("{}m", timeout.as_millis().max(1))).expect("digits"),
        );
        Self::new(Method::POST, url, headers, grpc_frame(message), true)
    }

    /// A GET of `url`.
    pub fn get(url: &Uri) -> Self {
        Self::new(Method::GET, url, HeaderMap::new(), Bytes::new(), false)
    }

    fn new(method: Method, url: &Uri, mut headers: HeaderMap, body: Bytes, grpc: bool) -> Self {
        let authority = url.authority().expect("an absolute URL").as_str();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(authority).expect("an authority is a valid header"),
        );
        let path = url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .expect("a path");
        Self {
            method,
            uri: url.clone(),
            path,
            headers,
            body,
            grpc,
        }
    }

    pub(super) fn request(&self, http2: bool) -> Request<Full<Bytes>> {
        let mut r = Request::new(Full::new(self.body.clone()));
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = if http2 {
            self.uri.clone()
        } else {
            self.path.clone()
        };
        *r.headers_mut() = self.headers.clone();
        if http2 {
            // :authority says it (a Host header next to it is refused by some servers).
            r.headers_mut().remove(header::HOST);
        }
        r
    }
}

/// A call's outcome: OK, or what went wrong (a gRPC code name, `http_<status>`, `transport`,
/// `no_grpc_status`).
pub type Outcome = Result<(), String>;

/// The outcome of an answer: its HTTP status, then (gRPC) `grpc-status` from the trailers or,
/// for a trailers-only answer, the headers.
pub fn outcome_of(
    status: http::StatusCode,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
    grpc: bool,
) -> Outcome {
    if !status.is_success() {
        return Err(format!("http_{}", status.as_u16()));
    }
    if !grpc {
        return Ok(());
    }
    let code = trailers
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    match code {
        Some(0) => Ok(()),
        // Named as tonic spells them (`tonic::Code`'s Debug); a number gRPC does not define
        // (tonic would call it Unknown) is kept as it came.
        Some(c @ 1..=16) => Err(format!("{:?}", tonic::Code::from_i32(c))),
        Some(c) => Err(format!("grpc_{c}")),
        None => Err("no_grpc_status".into()),
    }
}
