//! An idle timeout over any protocol (Twisted's `TimeoutMixin`).

use std::time::Duration;

use crate::{Context, DelayedCall, Protocol};

/// Wraps protocol `P` with an idle timeout: the connection is aborted (or `on_timeout` runs)
/// when nothing is received for the timeout. Every `data_received` restarts it, as does
/// [`reset_timeout`](TimeoutProtocol::reset_timeout) (after a write that should count as
/// activity, say); [`set_timeout`](TimeoutProtocol::set_timeout) changes or disables it.
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::policies::TimeoutProtocol;
/// use torsion_reactor::testing::Harness;
/// use torsion_reactor::{Context, Protocol};
///
/// struct Echo;
/// impl Protocol for Echo {
///     fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
///         cx.write(data);
///     }
/// }
///
/// let mut h = Harness::new(TimeoutProtocol::new(Echo, Duration::from_secs(30)));
/// h.advance(Duration::from_secs(20));
/// h.feed(b"still here");
/// h.advance(Duration::from_secs(20));
/// assert!(!h.is_closed());
/// h.advance(Duration::from_secs(10));
/// assert!(h.is_closed());
/// ```
pub struct TimeoutProtocol<P> {
    inner: P,
    timeout: Option<Duration>,
    call: Option<DelayedCall>,
    on_timeout: fn(&mut P, &mut Context<'_>),
}

impl<P: Protocol> TimeoutProtocol<P> {
    /// `inner` with an idle timeout of `timeout`, started when the connection is made.
    pub fn new(inner: P, timeout: Duration) -> TimeoutProtocol<P> {
        TimeoutProtocol {
            inner,
            timeout: Some(timeout),
            call: None,
            on_timeout: |_, cx| cx.abort_connection(),
        }
    }

    /// Runs `f` when the timeout fires instead of aborting the connection (Twisted's
    /// `timeoutConnection`): e.g. write a goodbye, then `cx.lose_connection()`.
    pub fn on_timeout(mut self, f: fn(&mut P, &mut Context<'_>)) -> TimeoutProtocol<P> {
        self.on_timeout = f;
        self
    }

    /// Changes the timeout (`None` disables it) and restarts it.
    pub fn set_timeout(&mut self, cx: &mut Context<'_>, timeout: Option<Duration>) {
        self.timeout = timeout;
        self.reset_timeout(cx);
    }

    /// Restarts the timeout from now.
    pub fn reset_timeout(&mut self, cx: &mut Context<'_>) {
        if let Some(call) = self.call.take() {
            call.cancel(cx.reactor());
        }
        let Some(timeout) = self.timeout else {
            return;
        };
        self.call = cx.call_later(timeout, |this: &mut Self, cx| {
            this.call = None;
            (this.on_timeout)(&mut this.inner, cx);
        });
    }

    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The wrapped protocol, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }
}

impl<P: Protocol> Protocol for TimeoutProtocol<P> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.reset_timeout(cx);
        self.inner.connection_made(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.reset_timeout(cx);
        self.inner.data_received(cx, data);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.inner.pause_writing(cx)
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.inner.resume_writing(cx)
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.inner.eof_received(cx)
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &crate::DisconnectReason) {
        self.inner.connection_lost(cx, reason)
    }

    fn woken(&mut self, cx: &mut Context<'_>) {
        self.inner.woken(cx)
    }

    fn write_progress(&mut self, cx: &mut Context<'_>, progress: crate::WriteProgress) {
        self.inner.write_progress(cx, progress)
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
    use crate::testing::Harness;
    use crate::DisconnectReason;

    struct Quiet;
    impl Protocol for Quiet {
        fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    }

    #[test]
    fn an_idle_connection_is_aborted_at_the_timeout() {
        let mut h = Harness::new(TimeoutProtocol::new(Quiet, Duration::from_secs(5)));
        h.advance(Duration::from_millis(4999));
        assert!(!h.is_closed());
        h.advance(Duration::from_millis(1));
        assert!(h.is_closed());
        assert!(matches!(
            *h.close_reason().unwrap(),
            DisconnectReason::Aborted
        ));
    }

    #[test]
    fn data_restarts_the_timeout_and_none_disables_it() {
        let mut h = Harness::new(TimeoutProtocol::new(Quiet, Duration::from_secs(5)));
        for _ in 0..10 {
            h.advance(Duration::from_secs(4));
            h.feed(b"x");
        }
        assert!(!h.is_closed());
        let id = h.connection().id();
        h.test_reactor().reactor().call_later_on(
            id,
            Duration::ZERO,
            |this: &mut TimeoutProtocol<Quiet>, cx| this.set_timeout(cx, None),
        );
        h.advance(Duration::ZERO);
        h.advance(Duration::from_secs(3600));
        assert!(!h.is_closed());
    }

    #[test]
    fn on_timeout_replaces_the_abort() {
        let quiet = TimeoutProtocol::new(Quiet, Duration::from_secs(1)).on_timeout(|_, cx| {
            cx.write(b"bye\n");
            cx.lose_connection();
        });
        let mut h = Harness::new(quiet);
        h.advance(Duration::from_secs(1));
        assert_eq!(h.take_text(), "bye\n");
        assert!(h.is_closed());
        assert!(matches!(
            *h.close_reason().unwrap(),
            DisconnectReason::Closed
        ));
    }
}
