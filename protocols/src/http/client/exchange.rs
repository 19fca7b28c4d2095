//! One request in flight: what to send, and the handler's slot, shared by every place the
//! request can be (queued, connecting, on a connection, redirected) and by its timer, so
//! that whoever finishes it first (the response's end, an error, the whole-request timeout,
//! a cancel) is the only one the handler hears.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use http::{HeaderMap, Method};
use torsion_reactor::{ConnectionId, DelayedCall, Reactor};

use super::target::Target;
use super::upload::RequestBody;
use super::{ClientError, ResponseHandler};

/// The handler of one request, until the request finishes.
pub(super) struct Slot {
    handler: RefCell<Option<Box<dyn ResponseHandler>>>,
    finished: Cell<bool>,
    /// The connection the request is on, to abort when it times out or is cancelled.
    pub(super) conn: Cell<Option<ConnectionId>>,
    /// The whole-request timeout.
    pub(super) timer: Cell<Option<DelayedCall>>,
}

impl Slot {
    pub(super) fn new(handler: Box<dyn ResponseHandler>) -> Rc<Slot> {
        Rc::new(Slot {
            handler: RefCell::new(Some(handler)),
            finished: Cell::new(false),
            conn: Cell::new(None),
            timer: Cell::new(None),
        })
    }

    pub(super) fn is_finished(&self) -> bool {
        self.finished.get()
    }

    /// The handler's limit on the body.
    pub(super) fn max_body_len(&self) -> u64 {
        self.handler
            .borrow()
            .as_ref()
            .map_or(u64::MAX, |h| h.max_body_len())
    }

    /// Calls the handler (not while it is finished). The handler is taken out during the
    /// call, so the call may finish or cancel this very request without a double borrow.
    pub(super) fn with(&self, f: impl FnOnce(&mut dyn ResponseHandler)) {
        let Some(mut handler) = self.handler.borrow_mut().take() else {
            return;
        };
        f(handler.as_mut());
        if !self.finished.get() {
            *self.handler.borrow_mut() = Some(handler);
        }
    }

    /// Marks the request finished and hands back its handler for the last call (`None` if
    /// it was already finished, or is being called right now).
    fn finish(&self, reactor: &mut Reactor) -> Option<Box<dyn ResponseHandler>> {
        if self.finished.replace(true) {
            return None;
        }
        if let Some(timer) = self.timer.take() {
            timer.cancel(reactor);
        }
        self.handler.borrow_mut().take()
    }

    /// Ends the request with `error`.
    pub(super) fn fail(&self, reactor: &mut Reactor, error: ClientError) {
        if let Some(mut handler) = self.finish(reactor) {
            handler.error(reactor, error);
        }
    }

    /// Ends the request with its body's end.
    pub(super) fn end(&self, reactor: &mut Reactor, trailers: HeaderMap) {
        if let Some(mut handler) = self.finish(reactor) {
            handler.end(reactor, trailers);
        }
    }

    /// Ends the request silently and aborts the connection it is on.
    pub(super) fn cancel(&self, reactor: &mut Reactor) {
        drop(self.finish(reactor));
        self.abort_connection(reactor);
    }

    /// Ends the request with `error` and aborts the connection it is on (a timeout).
    pub(super) fn fail_and_abort(&self, reactor: &mut Reactor, error: ClientError) {
        self.fail(reactor, error);
        self.abort_connection(reactor);
    }

    fn abort_connection(&self, reactor: &mut Reactor) {
        if let Some(conn) = self.conn.take() {
            reactor.abort_connection(conn);
        }
    }
}

/// A request on its way.
pub(super) struct Exchange {
    pub(super) method: Method,
    pub(super) target: Target,
    pub(super) headers: HeaderMap,
    pub(super) body: RequestBody,
    pub(super) slot: Rc<Slot>,
    /// Redirects followed so far.
    pub(super) redirects: usize,
    /// Whether it was already retried after a reused connection closed unanswered.
    pub(super) retried: bool,
}

impl Exchange {
    /// RFC 9110 §9.2.2: a request that may be sent twice with the effect of once (and whose
    /// body can be).
    pub(super) fn may_retry(&self) -> bool {
        self.body.is_replayable()
            && matches!(
                self.method,
                Method::GET
                    | Method::HEAD
                    | Method::PUT
                    | Method::DELETE
                    | Method::OPTIONS
                    | Method::TRACE
            )
    }
}

/// A request sent with [`HttpClient::send`](super::HttpClient::send), to cancel it.
#[derive(Clone)]
pub struct PendingRequest {
    pub(super) slot: Rc<Slot>,
}

impl PendingRequest {
    /// Cancels the request: its handler hears nothing more (it is dropped), and its
    /// connection, if it has one, is closed. A no-op once the request finished.
    pub fn cancel(&self, reactor: &mut Reactor) {
        self.slot.cancel(reactor);
    }

    /// Whether the request finished (answered, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }
}

impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest")
            .field("finished", &self.is_finished())
            .finish()
    }
}
