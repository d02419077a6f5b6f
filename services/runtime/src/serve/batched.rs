//! A connection's answers leave in as few writes as the HTTP/2 codec allows.
//!
//! h2 buffers the frames it sends and writes them out when its buffer is full or it has
//! nothing more to send, so a thousand small answers cost a handful of writes. But a DATA
//! frame at or above its "chain threshold" is not copied into that buffer: it is kept aside
//! and the buffer must be flushed (one write) before the next frame can be buffered. The
//! threshold is 256 bytes when the transport says it writes vectored (a TCP socket does) and
//! 1 KiB otherwise. GetUserCourses answers user 1 in 478 bytes: every answer cost its own
//! `writev`, 1.38 per call for the floor (a bare tonic server) against 0.43 for GetStatus's
//! 120 bytes, and each write on loopback also wakes the reader. On a 2-core VM (2026-12-06,
//! BENCHMARKS.md, "Answers in shared writes") the floor served GetStatus at ~88k/s and
//! GetUserCourses at ~50k/s, its system time per call 3.7 us against 10.5 us; with this type,
//! cursos wrote 0.525 times per answered call instead of 1.42 and served ~25% more.
//!
//! So the codec is told the transport does not write vectored (frames under 1 KiB join its
//! buffer), and what it writes goes through a small [`BufWriter`]: a larger frame, written
//! after the buffer in the same flush, joins it there and both leave in one write at the
//! flush. h2 flushes its transport at the end of every write-out, so nothing waits in the
//! buffer for a later call.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};

/// Per connection: the codec's buffer (at most 16 KiB) and a frame written after it join here
/// when they fit together; anything larger is written straight through. Allocated with the
/// connection (tokio's BufWriter), so `AULA_MAX_CONNECTIONS` bounds the total.
pub const WRITE_BUFFER: usize = 8 * 1024;

pin_project_lite::pin_project! {
    /// A transport whose writes are gathered until flushed, and which does not claim vectored
    /// writes (module docs say why).
    pub struct Batched<IO> {
        #[pin]
        io: BufWriter<IO>,
    }
}

impl<IO: AsyncWrite> Batched<IO> {
    pub fn new(io: IO) -> Self {
        Self {
            io: BufWriter::with_capacity(WRITE_BUFFER, io),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite> AsyncRead for Batched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite> AsyncWrite for Batched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    /// The point of the type: h2 then copies frames under 1 KiB into its own buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    };
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

    pin_project_lite::pin_project! {
        /// One end of a pipe that counts the writes reaching it and, like a TCP socket,
        /// says it writes vectored.
        struct Counted {
            #[pin]
            io: DuplexStream,
            writes: Arc<AtomicUsize>,
        }
    }

    impl AsyncRead for Counted {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.project().io.poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.project();
            this.writes.fetch_add(1, Relaxed);
            this.io.poll_write(cx, buf)
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            // One call, as writev is one syscall: the pipe takes the slices one by one.
            let this = self.project();
            this.writes.fetch_add(1, Relaxed);
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            this.io.poll_write(cx, first)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.project().io.poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.project().io.poll_shutdown(cx)
        }
    }

    fn pipe() -> (Counted, DuplexStream, Arc<AtomicUsize>) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(AtomicUsize::new(0));
        let counted = Counted {
            io: a,
            writes: writes.clone(),
        };
        (counted, b, writes)
    }

    #[tokio::test]
    async fn writes_before_a_flush_leave_in_one_write_and_in_order() {
        let (io, mut peer, writes) = pipe();
        let mut batched = Batched::new(io);
        assert!(!batched.is_write_vectored());
        batched.write_all(b"frame head ").await.unwrap();
        batched.write_all(&[7u8; 478]).await.unwrap();
        assert_eq!(writes.load(Relaxed), 0, "nothing written before the flush");
        batched.flush().await.unwrap();
        assert_eq!(writes.load(Relaxed), 1);
        let mut got = vec![0u8; 11 + 478];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..11], b"frame head ");
        assert!(got[11..].iter().all(|&b| b == 7));
    }

    #[tokio::test]
    async fn a_write_larger_than_the_buffer_goes_straight_through() {
        let (io, mut peer, writes) = pipe();
        let mut batched = Batched::new(io);
        let big = vec![1u8; WRITE_BUFFER * 2];
        batched.write_all(&big).await.unwrap();
        assert!(
            writes.load(Relaxed) >= 1,
            "written without waiting for a flush"
        );
        batched.flush().await.unwrap();
        let mut got = vec![0u8; big.len()];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
    }

    /// The property the type exists for, through hyper's real HTTP/2 server and client: 50
    /// concurrent answers of 478 bytes leave in far fewer writes than answers. Over a
    /// transport that says it writes vectored, h2 wrote each answer on its own.
    #[tokio::test(flavor = "current_thread")]
    async fn hyper_answers_of_478_bytes_share_writes() {
        async fn writes_for(batched: bool) -> usize {
            let (server_io, client_io, writes) = pipe();
            let service =
                hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; 478])),
                    ))
                });
            let builder =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
            if batched {
                let conn = builder.serve_connection(
                    hyper_util::rt::TokioIo::new(Batched::new(server_io)),
                    service,
                );
                tokio::spawn(conn);
            } else {
                let conn =
                    builder.serve_connection(hyper_util::rt::TokioIo::new(server_io), service);
                tokio::spawn(conn);
            }
            let (mut client, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(client_io),
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            // Let the SETTINGS exchange settle before counting.
            client.ready().await.unwrap();
            let before = writes.load(Relaxed);
            let calls = (0..50).map(|_| {
                let req = http::Request::get("http://x/")
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap();
                let call = client.send_request(req);
                async move {
                    use http_body_util::BodyExt as _;
                    let body = call
                        .await
                        .unwrap()
                        .into_body()
                        .collect()
                        .await
                        .unwrap()
                        .to_bytes();
                    assert_eq!(body.len(), 478);
                }
            });
            futures::future::join_all(calls).await;
            writes.load(Relaxed) - before
        }
        let plain = writes_for(false).await;
        let batched = writes_for(true).await;
        assert!(
            plain >= 50,
            "h2 over a vectored transport wrote {plain} times for 50 answers"
        );
        assert!(
            batched * 4 <= plain,
            "batched: {batched} writes for 50 answers (plain: {plain})"
        );
    }
}
