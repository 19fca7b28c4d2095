//! The client from async code: [`AsyncHttpClient`] and its [`ResponseFuture`], a thin shell
//! over [`HttpClient::send`]. The callback fills a slot the future shares and wakes the task
//! that awaits it; dropping the future cancels the request.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use torsion_reactor::task::LocalHandle;

use super::{ClientError, HttpClient, PendingRequest, Request, Response};

/// An [`HttpClient`] for tasks on the reactor's thread: `client.get(url).await` gives the
/// response, its body read whole, or the error.
///
/// It holds the client and a [`LocalHandle`] to reach the reactor. Cheap to clone (clones
/// share the connection pool); [`with_client`](AsyncHttpClient::with_client) shares the pool of
/// an `HttpClient` that callback code uses too.
///
/// ```no_run
/// use torsion_protocols::http::client::AsyncHttpClient;
/// use torsion_reactor::Reactor;
///
/// let mut reactor = Reactor::new()?;
/// let local = reactor.local_handle();
/// let client = AsyncHttpClient::new(&local);
/// reactor.spawn_task(async move {
///     match client.get("http://127.0.0.1:8080/plaintext").await {
///         Ok(response) => println!("{} ({} bytes)", response.status, response.body.len()),
///         Err(error) => eprintln!("{error}"),
///     }
///     local.defer(|reactor| reactor.stop());
/// });
/// reactor.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct AsyncHttpClient {
    client: HttpClient,
    local: LocalHandle,
}

impl fmt::Debug for AsyncHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncHttpClient")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl AsyncHttpClient {
    /// A client with the default [`ClientConfig`](super::ClientConfig), on `local`'s reactor.
    pub fn new(local: &LocalHandle) -> Self {
        Self::with_client(local, HttpClient::new())
    }

    /// Sends through `client` (its configuration, its pool) from async code.
    pub fn with_client(local: &LocalHandle, client: HttpClient) -> Self {
        AsyncHttpClient {
            client,
            local: local.clone(),
        }
    }

    /// The callback client underneath (its configuration, its pool's counters).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Sends a `GET` for `url`; see [`send`](AsyncHttpClient::send).
    pub fn get(&self, url: impl Into<String>) -> ResponseFuture {
        self.send(Request::get(url))
    }

    /// Sends `request` and resolves to the response with its whole body (at most
    /// [`ClientConfig::max_body_len`](super::ClientConfig::max_body_len)) or the error, as
    /// [`HttpClient::send`] does. Lazy, as futures are: nothing is sent until it is first
    /// polled. Dropping it unfinished cancels the request (its connection, if it has one,
    /// is closed), so [`LocalHandle::timeout`] around it gives up on the request, too.
    pub fn send(&self, request: Request) -> ResponseFuture {
        ResponseFuture {
            client: self.client.clone(),
            local: self.local.clone(),
            request: Some(request),
            exchange: Rc::default(),
        }
    }
}

/// Where the callback leaves the answer for the future.
#[derive(Default)]
struct Exchange {
    answer: RefCell<Option<Result<Response, ClientError>>>,
    waker: RefCell<Option<Waker>>,
    /// Set once the reactor has sent the request; a cancel needs it.
    pending: RefCell<Option<PendingRequest>>,
    /// The answer was taken.
    done: Cell<bool>,
}

impl Exchange {
    fn answer(&self, result: Result<Response, ClientError>) {
        *self.answer.borrow_mut() = Some(result);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// The future of [`AsyncHttpClient::send`] and [`get`](AsyncHttpClient::get): the response,
/// its body read whole, or the [`ClientError`]. Dropping it before it completes cancels the
/// request.
#[must_use = "futures do nothing unless awaited"]
pub struct ResponseFuture {
    client: HttpClient,
    local: LocalHandle,
    /// The request until the first poll hands it to the reactor.
    request: Option<Request>,
    exchange: Rc<Exchange>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("sent", &self.request.is_none())
            .field("finished", &self.exchange.done.get())
            .finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, ClientError>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(answer) = self.exchange.answer.borrow_mut().take() {
            self.exchange.done.set(true);
            return Poll::Ready(answer);
        }
        assert!(
            !self.exchange.done.get(),
            "a ResponseFuture polled after it returned Ready"
        );
        match &mut *self.exchange.waker.borrow_mut() {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        if let Some(request) = self.request.take() {
            let (client, exchange) = (self.client.clone(), self.exchange.clone());
            self.local.defer(move |reactor| {
                // Weak: the request's handler must not keep its own future's slot alive.
                let answered = Rc::downgrade(&exchange);
                let pending = client.send(reactor, request, move |result, _| {
                    if let Some(exchange) = Weak::upgrade(&answered) {
                        exchange.answer(result);
                    }
                });
                *exchange.pending.borrow_mut() = Some(pending);
            });
        }
        Poll::Pending
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        // Never sent, or answered: nothing to cancel.
        if self.request.is_some() || self.exchange.done.get() {
            return;
        }
        let exchange = self.exchange.clone();
        // Queued after the send itself, so `pending` is set by the time this runs.
        self.local.defer(move |reactor| {
            if let Some(pending) = exchange.pending.borrow_mut().take() {
                pending.cancel(reactor);
            }
        });
    }
}
