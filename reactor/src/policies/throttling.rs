//! Throughput limits over any factory's connections (Twisted's `ThrottlingFactory`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::{Address, Context, Factory, Protocol, TlsError, WriteProgress};

/// The accounting window: limits are bytes per second, counted over whole seconds.
const WINDOW: Duration = Duration::from_secs(1);

/// Wraps factory `F` so that all its connections together read at most `read_limit` and
/// write at most `write_limit` bytes per second (Twisted's `ThrottlingFactory`). A connection
/// that reads past the limit stops reading until the second is over (the kernel's buffers
/// fill and the peer slows down); one whose protocol writes past it hears
/// [`pause_writing`](Protocol::pause_writing) until then, as it does when its write queue
/// is full.
///
/// Counted are the bytes received and those queued during the protocol's callbacks
/// (`connection_made`, `data_received`, `woken`, `resume_writing`, `write_progress`). When a
/// read throttle lifts, reading resumes unless the connection's writes are paused: a
/// protocol that pauses reading in `pause_writing` (an echo) resumes it itself.
///
/// ```
/// use torsion_reactor::policies::ThrottlingFactory;
/// use torsion_reactor::{Context, Protocol};
///
/// struct Echo;
/// impl Protocol for Echo {
///     fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
///         cx.write(data);
///     }
/// }
///
/// let factory = ThrottlingFactory::new(|| Echo).read_limit(1 << 20).write_limit(1 << 20);
/// # let _ = factory;
/// ```
pub struct ThrottlingFactory<F> {
    inner: F,
    budget: Rc<RefCell<Budget>>,
}

/// What the connections of one factory used of this second's budget.
#[derive(Default)]
struct Budget {
    read_limit: Option<u64>,
    write_limit: Option<u64>,
    window_start: Option<Instant>,
    read: u64,
    written: u64,
}

impl Budget {
    /// The end of the current window, starting a new one if the last is over.
    fn window_end(&mut self, now: Instant) -> Instant {
        match self.window_start {
            Some(start) if now < start + WINDOW => start + WINDOW,
            _ => {
                self.window_start = Some(now);
                self.read = 0;
                self.written = 0;
                now + WINDOW
            }
        }
    }

    fn over(used: u64, limit: Option<u64>) -> bool {
        limit.is_some_and(|limit| used > limit)
    }
}

impl<F: Factory> ThrottlingFactory<F> {
    /// `inner`'s connections, not yet limited.
    pub fn new(inner: F) -> ThrottlingFactory<F> {
        ThrottlingFactory {
            inner,
            budget: Rc::default(),
        }
    }

    /// At most `bytes_per_second` read by all the connections together.
    pub fn read_limit(self, bytes_per_second: u64) -> ThrottlingFactory<F> {
        self.budget.borrow_mut().read_limit = Some(bytes_per_second);
        self
    }

    /// At most `bytes_per_second` written by all the connections together.
    pub fn write_limit(self, bytes_per_second: u64) -> ThrottlingFactory<F> {
        self.budget.borrow_mut().write_limit = Some(bytes_per_second);
        self
    }
}

impl<F: Factory> Factory for ThrottlingFactory<F> {
    type Protocol = ThrottledProtocol<F::Protocol>;

    fn build_protocol(&mut self, peer: Address) -> Option<Self::Protocol> {
        let inner = self.inner.build_protocol(peer)?;
        Some(ThrottledProtocol {
            inner,
            budget: self.budget.clone(),
            read_throttled: false,
            write_throttled: false,
            queue_full: false,
        })
    }

    fn start_factory(&mut self) {
        self.inner.start_factory()
    }

    fn stop_factory(&mut self) {
        self.inner.stop_factory()
    }

    fn handshake_failed(&mut self, peer: Address, error: &TlsError) {
        self.inner.handshake_failed(peer, error)
    }
}

/// A protocol of a [`ThrottlingFactory`]: `P`, with its bytes counted.
pub struct ThrottledProtocol<P> {
    inner: P,
    budget: Rc<RefCell<Budget>>,
    read_throttled: bool,
    write_throttled: bool,
    /// The reactor said `pause_writing` (the write queue is full) and not yet resume.
    queue_full: bool,
}

impl<P: Protocol> ThrottledProtocol<P> {
    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The wrapped protocol, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    /// Runs `f` on the inner protocol, counting the bytes it queues, then throttles.
    fn counted(
        &mut self,
        cx: &mut Context<'_>,
        read: usize,
        f: impl FnOnce(&mut P, &mut Context<'_>),
    ) {
        let before = cx.queued_bytes();
        f(&mut self.inner, cx);
        let written = cx.queued_bytes().saturating_sub(before);
        let now = cx.reactor().now();
        let mut budget = self.budget.borrow_mut();
        let end = budget.window_end(now);
        budget.read += read as u64;
        budget.written += written as u64;
        let over_read = Budget::over(budget.read, budget.read_limit);
        let over_write = Budget::over(budget.written, budget.write_limit);
        drop(budget);
        if over_read && !self.read_throttled && !cx.is_closing() {
            self.read_throttled = true;
            cx.pause_reading();
            self.lift_at(cx, end - now);
        }
        if over_write && !self.write_throttled && !cx.is_closing() {
            self.write_throttled = true;
            if !self.queue_full {
                self.inner.pause_writing(cx);
            }
            self.lift_at(cx, end - now);
        }
    }

    fn lift_at(&mut self, cx: &mut Context<'_>, delay: Duration) {
        cx.call_later(delay, |this: &mut Self, cx| this.lift(cx));
    }

    /// The window is over: what was throttled goes on.
    fn lift(&mut self, cx: &mut Context<'_>) {
        if std::mem::take(&mut self.read_throttled) && !self.queue_full {
            cx.resume_reading();
        }
        if std::mem::take(&mut self.write_throttled) && !self.queue_full {
            self.inner.resume_writing(cx);
        }
    }
}

impl<P: Protocol> Protocol for ThrottledProtocol<P> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.counted(cx, 0, |p, cx| p.connection_made(cx));
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.counted(cx, data.len(), |p, cx| p.data_received(cx, data));
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.queue_full = true;
        if !self.write_throttled {
            self.inner.pause_writing(cx);
        }
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.queue_full = false;
        if !self.write_throttled {
            self.counted(cx, 0, |p, cx| p.resume_writing(cx));
        }
    }

    fn woken(&mut self, cx: &mut Context<'_>) {
        self.counted(cx, 0, |p, cx| p.woken(cx));
    }

    fn write_progress(&mut self, cx: &mut Context<'_>, progress: WriteProgress) {
        self.counted(cx, 0, |p, cx| p.write_progress(cx, progress));
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.inner.eof_received(cx)
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &crate::DisconnectReason) {
        self.inner.connection_lost(cx, reason)
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        self.inner.tls_handshake_completed(cx)
    }

    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        self.inner.shutdown_requested(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestReactor;

    #[derive(Default)]
    struct Recorder {
        received: usize,
        pauses: usize,
        resumes: usize,
    }

    impl Protocol for Recorder {
        fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
            self.received += data.len();
            cx.write(data);
        }
        fn pause_writing(&mut self, _cx: &mut Context<'_>) {
            self.pauses += 1;
        }
        fn resume_writing(&mut self, _cx: &mut Context<'_>) {
            self.resumes += 1;
        }
    }

    type Throttled = ThrottledProtocol<Recorder>;

    #[test]
    fn reading_past_the_limit_stops_until_the_second_is_over() {
        let mut test = TestReactor::new();
        let mut factory = ThrottlingFactory::new(Recorder::default).read_limit(10);
        let conn = test.connect_from(&mut factory).unwrap();
        test.feed(&conn, b"fifteen bytes!!");
        test.feed(&conn, b"more.");
        assert_eq!(
            test.protocol::<Throttled>(&conn).unwrap().inner().received,
            15
        );
        test.advance(Duration::from_millis(999));
        assert_eq!(
            test.protocol::<Throttled>(&conn).unwrap().inner().received,
            15
        );
        test.advance(Duration::from_millis(1));
        assert_eq!(
            test.protocol::<Throttled>(&conn).unwrap().inner().received,
            20
        );
        assert_eq!(conn.take_written(), b"fifteen bytes!!more.");
    }

    #[test]
    fn writing_past_the_limit_pauses_the_protocol_until_the_second_is_over() {
        let mut test = TestReactor::new();
        let mut factory = ThrottlingFactory::new(Recorder::default).write_limit(10);
        let a = test.connect_from(&mut factory).unwrap();
        let b = test.connect_from(&mut factory).unwrap();
        test.feed(&a, b"0123456");
        test.feed(&b, b"0123456");
        let recorder = |test: &TestReactor, c| {
            let r = test.protocol::<Throttled>(c).unwrap().inner();
            (r.pauses, r.resumes)
        };
        // The limit is the factory's: the second connection's 7 bytes cross it.
        assert_eq!(recorder(&test, &a), (0, 0));
        assert_eq!(recorder(&test, &b), (1, 0));
        test.advance(Duration::from_secs(1));
        assert_eq!(recorder(&test, &b), (1, 1));
    }
}
