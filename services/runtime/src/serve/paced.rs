//! A connection whose calls are being refused reads its next ones later.
//!
//! A refusal is cheap for our layers but not for HTTP/2: reading the stream's frames, HPACK,
//! the request's head and the answer cost about half of what a served call does. A client that
//! replaces each refused call at once (h2load does; a gRPC client honouring
//! `grpc-retry-pushback-ms` does not) would otherwise have the server spend most of its core
//! refusing, and serve less the harder it is pushed. So each refusal puts the connection
//! [`REFUSAL_DEBT`] turns of tokio's run queue behind: before reading again it yields that many
//! times, letting the admitted calls queued meanwhile run first. Only a connection with
//! admitted calls of its own still open is charged: one whose calls are all answered (a light
//! client sending one call at a time, a client that just connected) is never paced, so a few
//! refusals cannot make it read late, in a batch, and be refused more. The calls it did read were
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
/// History (BENCHMARKS.md, "Overload"): 2 turns (at most 64), charged to every refused
/// connection, kept the light client among the heavy ones served but left h2load's heavy
/// connections replacing refused calls ~18k times a second at 3x cursos' maximum, on a quiet
/// machine: goodput 76-79% of the maximum, admitted calls' p99 9-10 ms. 8 turns (at most 256)
/// refused 5x fewer, but in one run of four the light client, charged for a few refusals, read
/// its next calls late and in a batch, was refused more of them and starved (28% refused, p99
/// 908 ms). Charged only to connections with admitted calls open ([`Debt::charge`]), a light
/// client owes nothing, and 16 turns (at most 512) were measured on a quiet machine at 3x:
/// refusals ~2k/s, goodput 98-101% of the maximum, p99 3.4-4.0 ms (9-10 ms before), the light
/// client refused at most once in 12,000 calls.
pub const REFUSAL_DEBT: usize = 16;
/// At most this many turns owed: uncapped, a connection refused faster than the run queue
/// turns owed more with every read and was starved: its calls waited seconds in the socket
/// (measured, 2026-12-05). A turn is as long as the calls queued for the CPU (at most
/// `AULA_MAX_QUEUED`, 128 per core): with the queue at 64 (busy machine, 2026-12-05), 16 turns
/// had connections replacing refused calls so often that refusing them took most of the core
/// (goodput 45% of the maximum); 32 and 64 turns: 103% and 111%. So the cap is 32 refusals'
/// worth, as 64 was with 2 turns per refusal.
pub const MAX_DEBT: usize = 32 * REFUSAL_DEBT;

/// What a connection owes for its refused calls, in turns of the run queue: charged by
/// [`crate::arrival::Arrival`] when it refuses, paid by [`Paced`] before each read; and how
/// many of its admitted calls are still open, counted by the shedding layer
/// ([`crate::shed`]) from admission until the answer has been sent in full. All of it is
/// touched in the connection's task or its calls' tasks; the atomics make it `Send`.
#[derive(Clone, Default)]
pub struct Debt(Arc<State>);

#[derive(Default)]
struct State {
    owed: AtomicUsize,
    open: AtomicUsize,
}

impl Debt {
    /// A refused call: charged only while the connection has admitted calls open. Those are
    /// being served, so reading later costs the client nothing it is owed; a connection with
    /// none would only be made to read late, in a batch, and be refused more.
    pub fn charge(&self) {
        if self.0.open.load(Relaxed) == 0 {
            return;
        }
        let _ = self.0.owed.fetch_update(Relaxed, Relaxed, |d| {
            Some(d.saturating_add(REFUSAL_DEBT).min(MAX_DEBT))
        });
    }

    /// One of the connection's calls admitted: open until the guard is dropped.
    pub fn opened(&self) -> Open {
        self.0.open.fetch_add(1, Relaxed);
        Open(self.0.clone())
    }

    #[cfg(test)]
    pub(crate) fn open_calls(&self) -> usize {
        self.0.open.load(Relaxed)
    }

    /// Pays one turn; `false` when nothing was owed.
    fn pay(&self) -> bool {
        self.0
            .owed
            .fetch_update(Relaxed, Relaxed, |d| d.checked_sub(1))
            .is_ok()
    }
}

/// One of a connection's admitted calls, open until dropped ([`Debt::opened`]).
pub struct Open(Arc<State>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
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
    async fn a_refusal_costs_a_connection_being_served_turns_before_it_reads_again() {
        let (mut client, server) = tokio::io::duplex(64);
        let debt = Debt::default();
        let mut paced = Paced::new(server, debt.clone());
        tokio::io::AsyncWriteExt::write_all(&mut client, b"abc")
            .await
            .unwrap();

        let wakes = Arc::new(Wakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut bytes = [0u8; 8];

        // One refused call and none of its own open (a light client's): nothing owed, read
        // at once.
        debt.charge();
        let mut buf = ReadBuf::new(&mut bytes);
        let polled = Pin::new(&mut paced).poll_read(&mut cx, &mut buf);
        assert!(
            polled.is_ready(),
            "a connection with no call open was paced"
        );
        assert_eq!(buf.filled(), b"abc");
        assert_eq!(wakes.0.load(Relaxed), 0);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"abc")
            .await
            .unwrap();

        let open = debt.opened(); // a call of its own being served
        debt.charge(); // one refused call
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

        // Its last call answered, the connection is not charged again.
        drop(open);
        debt.charge();
        assert!(!debt.pay());
    }
}
