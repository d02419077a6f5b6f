//! A connection whose calls are being refused reads its next ones later.
//!
//! A refusal is cheap for our layers but not for HTTP/2: reading the stream's frames, HPACK,
//! the request's head and the answer cost about half of what a served call does. A client that
//! replaces each refused call at once (h2load does; a gRPC client honouring
//! `grpc-retry-pushback-ms` does not) would otherwise have the server spend most of its core
//! refusing, and serve less the harder it is pushed. So each refusal puts the connection
//! [`REFUSAL_DEBT`] turns of tokio's run queue behind: before reading again it yields that many
//! times, letting the admitted calls queued meanwhile run first. Only a connection holding its
//! share of the queue is refused for the queue being full, and only such a connection is
//! charged ([`Debt::holds_share`]): a light client (one call at a time, or a few) is never paced,
//! so a few refusals cannot make it read late, in a batch, and be refused more. The calls it did
//! read were
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
/// 908 ms). Charged only to connections with admitted calls open, a light client owed nothing,
/// and 16 turns (at most 512) were measured on a quiet machine at 3x: refusals ~2k/s, goodput
/// 98-101% of the maximum, p99 3.4-4.0 ms (9-10 ms before), the light client refused at most
/// once in 12,000 calls. On a slower machine (2026-12-06, one call ~50 us) its calls waited
/// longer than its 5 ms between calls, so it always had one open, was charged, and starved
/// again (38-43% refused, p99 17-26 s). Charged only to connections holding their share of the
/// queue ([`Debt::holds_share`]), with a light client's call started ahead of the queue
/// ([`crate::serve::starts`]): refused at most 5 times in 12,000, p99 15-18 ms, on that
/// machine (BENCHMARKS.md, "Fair starts").
pub const REFUSAL_DEBT: usize = 16;
/// At most this many turns owed: uncapped, a connection refused faster than the run queue
/// turns owed more with every read and was starved: its calls waited seconds in the socket
/// (measured, 2026-12-05). A turn is as long as the calls queued for the CPU (at most
/// `AULA_MAX_QUEUED`, 128 per core): with the queue at 64 (busy machine, 2026-12-05), 16 turns
/// had connections replacing refused calls so often that refusing them took most of the core
/// (goodput 45% of the maximum); 32 and 64 turns: 103% and 111%. So the cap is 32 refusals'
/// worth, as 64 was with 2 turns per refusal.
pub const MAX_DEBT: usize = 32 * REFUSAL_DEBT;

/// What a connection owes for its refused calls, in turns of the run queue: charged by the
/// shedding layer ([`crate::shed`]) when it refuses one of its calls, paid by [`Paced`] before
/// each read; and how many of its admitted calls are still open, counted by the shedding layer
/// from admission until the answer has been sent in full. All of it is touched in the
/// connection's task or its calls' tasks; the atomics make it `Send`.
#[derive(Clone, Default)]
pub struct Debt(Arc<State>);

#[derive(Default)]
struct State {
    owed: AtomicUsize,
    open: AtomicUsize,
    /// Of the open calls, those admitted and not yet started (waiting for the CPU).
    waiting: AtomicUsize,
    /// The server's connections with calls open (this one among them while it has).
    active: Active,
}

/// How many of a server's connections have admitted calls open: shared by their [`Debt`]s.
#[derive(Clone, Default)]
pub struct Active(Arc<AtomicUsize>);

impl Debt {
    /// A connection of the server whose connections `active` counts.
    pub fn new(active: Active) -> Self {
        Self(Arc::new(State {
            active,
            ..State::default()
        }))
    }

    /// Whether the connection holds at least its share of `places` (the calls allowed to wait
    /// for the CPU): its open calls, against `places` split evenly among the connections with
    /// calls open. Below its share, a connection is not refused for the queue being full, nor
    /// paced: a light client sending a call at a time never is, however heavy the others.
    pub fn holds_share(&self, places: usize) -> bool {
        let open = self.0.open.load(Relaxed);
        open > 0 && open * self.0.active.0.load(Relaxed).max(1) >= places
    }

    /// A refused call of a connection holding its share ([`Debt::holds_share`]): it reads its
    /// next calls [`REFUSAL_DEBT`] turns later. Its calls open are being served, so reading
    /// later costs it nothing it is owed; a connection with fewer would only be made to read
    /// late, in a batch, and be refused more.
    pub fn charge(&self) {
        let _ = self.0.owed.fetch_update(Relaxed, Relaxed, |d| {
            Some(d.saturating_add(REFUSAL_DEBT).min(MAX_DEBT))
        });
    }

    /// One of the connection's calls admitted: open until the guard is dropped.
    pub fn opened(&self) -> Open {
        if self.0.open.fetch_add(1, Relaxed) == 0 {
            self.0.active.0.fetch_add(1, Relaxed);
        }
        Open(self.0.clone())
    }

    /// One of the connection's calls admitted and waiting to start: counted until the guard
    /// is dropped (at the call's first poll).
    pub fn waiting(&self) -> Waiting {
        self.0.waiting.fetch_add(1, Relaxed);
        Waiting(self.0.clone())
    }

    /// The connection's admitted calls still open.
    pub fn open_calls(&self) -> usize {
        self.0.open.load(Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn owed(&self) -> usize {
        self.0.owed.load(Relaxed)
    }

    /// Pays one turn; `false` when nothing was owed.
    fn pay(&self) -> bool {
        self.0
            .owed
            .fetch_update(Relaxed, Relaxed, |d| d.checked_sub(1))
            .is_ok()
    }
}

/// One of a connection's admitted calls waiting to start, until dropped ([`Debt::waiting`]).
pub struct Waiting(Arc<State>);

impl Waiting {
    /// The connection's calls waiting to start, this one included.
    pub fn calls(&self) -> usize {
        self.0.waiting.load(Relaxed)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Relaxed);
    }
}

/// One of a connection's admitted calls, open until dropped ([`Debt::opened`]).
pub struct Open(Arc<State>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Relaxed) == 1 {
            self.0.active.0.fetch_sub(1, Relaxed);
        }
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
    async fn a_refusal_costs_its_connection_turns_before_it_reads_again() {
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
    }

    #[test]
    fn a_connection_holds_its_share_of_the_queue_by_its_calls_open() {
        let active = Active::default();
        let (heavy, light) = (Debt::new(active.clone()), Debt::new(active.clone()));
        let places = 4;
        assert!(!light.holds_share(places), "no call open: no share held");
        let mut heavys: Vec<_> = (0..3).map(|_| heavy.opened()).collect();
        assert!(!heavy.holds_share(places), "alone, 3 of 4 places");
        heavys.push(heavy.opened());
        assert!(heavy.holds_share(places), "alone, all 4 places");

        // A second connection with calls open: each one's share is now 2 places.
        let first = light.opened();
        assert_eq!(active.0.load(Relaxed), 2);
        assert!(heavy.holds_share(places));
        assert!(!light.holds_share(places), "1 call open of a share of 2");
        let second = light.opened();
        assert!(light.holds_share(places), "2 calls open of a share of 2");

        drop((first, second));
        assert_eq!(
            active.0.load(Relaxed),
            1,
            "the light connection has none open"
        );
        heavys.clear();
        assert_eq!(active.0.load(Relaxed), 0);
    }
}
