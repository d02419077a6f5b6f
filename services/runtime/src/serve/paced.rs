//! A connection whose calls are being refused reads its next ones later.
//!
//! A refusal is cheap for our layers but not for HTTP/2: reading the stream's frames, HPACK,
//! the request's head and the answer cost about half of what a served call does. A client that
//! replaces each refused call at once (h2load does; a gRPC client honouring
//! `grpc-retry-pushback-ms` does not) would otherwise have the server spend most of its core
//! refusing, and serve less the harder it is pushed. So each refusal puts the connection
//! [`REFUSAL_DEBT`] turns of tokio's run queue behind: before reading again it yields that many
//! times, letting the admitted calls queued meanwhile run first. The calls it did read were
//! still answered at once; the ones it has not read yet wait in the socket (the client's
//! streams, bounded by `AULA_HTTP2_MAX_CONCURRENT_STREAMS`), costing nothing. Writes are not
//! paced: answers and refusals already decided leave at once.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, ReadBuf};

/// Turns of the run queue a connection waits, per call of its refused, before reading more.
/// 8 turns (at most 256) refused 5x fewer calls at 3x cursos' maximum and halved the admitted
/// calls' p99 in three runs of 2026-12-06, but in a fourth the light client among the heavy
/// ones was refused a few calls, owed turns for them, read its next calls late and in a batch,
/// was refused more of them, and starved: 28% of its calls refused, p99 908 ms. A connection's
/// debt must not grow faster than it can be paid off; 2 turns (at most 64) did not in any run.
pub const REFUSAL_DEBT: usize = 2;
/// At most this many turns owed: uncapped, a connection refused faster than the run queue
/// turns (a light client among heavy ones, on a slow core) owed more with every read and was
/// starved: its calls waited seconds in the socket (measured, 2026-12-05). A turn is as long
/// as the calls queued for the CPU (at most `AULA_MAX_QUEUED`, 128 per core, where 256 could
/// queue before it): the shorter the turns, the more turns a refused connection must wait for
/// its reads to stay as far apart. With the queue bounded (at 64, busy machine, 2026-12-05),
/// 16 turns had connections replacing refused calls so often that refusing them took most of
/// the core (goodput 45% of the maximum); 32 and 64 turns: 103% and 111%.
pub const MAX_DEBT: usize = 64;

/// What a connection owes for its refused calls, in turns of the run queue: charged by
/// [`crate::arrival::Arrival`] when it refuses, paid by [`Paced`] before each read. Both run in
/// the connection's task; the atomic only makes it `Send`.
#[derive(Clone, Default)]
pub struct Debt(Arc<AtomicUsize>);

impl Debt {
    pub fn charge(&self) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |d| {
            Some(d.saturating_add(REFUSAL_DEBT).min(MAX_DEBT))
        });
    }

    /// Pays one turn; `false` when nothing was owed.
    fn pay(&self) -> bool {
        self.0
            .fetch_update(Relaxed, Relaxed, |d| d.checked_sub(1))
            .is_ok()
    }
}

pin_project_lite::pin_project! {
    /// A connection's transport, reading only once its [`Debt`] is paid.
    pub struct Paced<IO> {
        #[pin]
        io: IO,
        debt: Debt,
    }
}

impl<IO> Paced<IO> {
    pub fn new(io: IO, debt: Debt) -> Self {
        Self { io, debt }
    }
}

impl<IO: AsyncRead> AsyncRead for Paced<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.debt.pay() {
            // A turn of the run queue: woken now, polled again after every task already queued.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.io.poll_read(cx, buf)
    }
}

crate::connections::forward_write!(Paced);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    /// Counts the wake-ups it is given: a yield is a wake-up and a Pending.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    #[tokio::test]
    async fn each_refusal_costs_the_connection_turns_before_it_reads_again() {
        let (mut client, server) = tokio::io::duplex(64);
        let debt = Debt::default();
        let mut paced = Paced::new(server, debt.clone());
        tokio::io::AsyncWriteExt::write_all(&mut client, b"abc")
            .await
            .unwrap();

        debt.charge(); // one refused call
        let wakes = Arc::new(Wakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut bytes = [0u8; 8];
        for turn in 1..=REFUSAL_DEBT {
            let mut buf = ReadBuf::new(&mut bytes);
            let polled = Pin::new(&mut paced).poll_read(&mut cx, &mut buf);
            assert!(
                polled.is_pending(),
                "turn {turn}: read before the debt was paid"
            );
            assert_eq!(
                wakes.0.load(Relaxed),
                turn,
                "a yield wakes its task at once"
            );
        }
        // Paid: the bytes waiting in the socket are read.
        let n = paced.read(&mut bytes).await.unwrap();
        assert_eq!(&bytes[..n], b"abc");

        // However many calls were refused, the connection is read again within MAX_DEBT turns.
        for _ in 0..1000 {
            debt.charge();
        }
        let mut turns = 0;
        while debt.pay() {
            turns += 1;
        }
        assert_eq!(turns, MAX_DEBT);
    }
}
