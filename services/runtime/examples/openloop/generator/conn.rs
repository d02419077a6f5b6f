//! The connections: HTTP/1.1 or HTTP/2, each a sender of calls.

use super::call::{outcome_of, Call, Outcome};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io;
use tokio::net::TcpStream;
pub(super) enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    pub(super) async fn call(&mut self, call: &Call) -> Outcome {
        let answer = match self {
            Sender::H1(s) => {
                // Ready once the previous answer was read to its end (keep-alive).
                if s.ready().await.is_err() {
                    return Err("transport".into());
                }
                s.send_request(call.request(false)).await
            }
            Sender::H2(s) => s.send_request(call.request(true)).await,
        };
        let (parts, body) = answer.map_err(|_| "transport".to_string())?.into_parts();
        let body = body.collect().await.map_err(|_| "transport".to_string())?;
        outcome_of(parts.status, &parts.headers, body.trailers(), call.grpc)
    }
}

/// HTTP/1.1 (one call at a time per connection) or HTTP/2 (any number, side by side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

pub(super) async fn connect(url: &Uri, protocol: Protocol) -> io::Result<Sender> {
    let authority = url.authority().expect("an absolute URL").as_str();
    let tcp = TcpStream::connect(authority)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("connecting to {authority}: {e}")))?;
    tcp.set_nodelay(true)?;
    let io = TokioIo::new(tcp);
    let failed = |e: hyper::Error| io::Error::other(format!("handshake with {authority}: {e}"));
    Ok(match protocol {
        Protocol::Http1 => {
            let (send, conn) = http1::handshake(io).await.map_err(failed)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H1(send)
        }
        Protocol::Http2 => {
            let (mut send, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(failed)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            send.ready().await.map_err(failed)?;
            Sender::H2(send)
        }
    })
}
