//! Blocking work from a task: [`LocalHandle::call_in_thread`] (the reactor's thread pool as
//! a future) and [`LocalHandle::lookup_host`] (name resolution there, as `connect` does it).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::LocalHandle;
use crate::WorkPanicked;

/// Where an answer made on the reactor waits for the future that asked for it.
pub(crate) struct Reply<T> {
    value: RefCell<Option<T>>,
    waker: RefCell<Option<Waker>>,
}

impl<T> Reply<T> {
    pub(crate) fn new() -> Rc<Reply<T>> {
        Rc::new(Reply {
            value: RefCell::new(None),
            waker: RefCell::new(None),
        })
    }

    /// Stores the answer and wakes the future waiting for it.
    pub(crate) fn set(&self, value: T) {
        *self.value.borrow_mut() = Some(value);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// The answer if it came (taking it), else remembers whom to wake.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<T> {
        match self.value.borrow_mut().take() {
            Some(value) => Poll::Ready(value),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Takes the answer if it came and nobody took it.
    pub(crate) fn take(&self) -> Option<T> {
        self.value.borrow_mut().take()
    }
}

/// Work for a pool thread.
type Work<T> = Box<dyn FnOnce() -> T + Send>;

impl LocalHandle {
    /// Runs blocking `work` on the reactor's thread pool (as
    /// [`Reactor::call_in_thread`](crate::Reactor::call_in_thread)) and resolves to its
    /// result, or to [`WorkPanicked`] if it panicked. The work is handed to the pool once the
    /// future is first polled; dropping the future then does not stop it (a thread cannot be
    /// interrupted), its result is just dropped.
    pub fn call_in_thread<T, W>(&self, work: W) -> InThread<T>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
    {
        InThread {
            handle: self.clone(),
            work: Some(Box::new(work)),
            reply: Reply::new(),
        }
    }

    /// Resolves `host` (a name or an address literal) and `port` to socket addresses on the
    /// reactor's thread pool, as [`Reactor::connect`](crate::Reactor::connect) resolves a
    /// [`Target::Host`](crate::Target::Host) (getaddrinfo blocks, so never on the reactor
    /// thread). A name with no address gives `NotFound`.
    pub fn lookup_host(&self, host: impl Into<String>, port: u16) -> LookupHost {
        let host = host.into();
        LookupHost {
            inner: self.call_in_thread(move || -> io::Result<Vec<SocketAddr>> {
                let addrs: Vec<SocketAddr> = (host.as_str(), port).to_socket_addrs()?.collect();
                if addrs.is_empty() {
                    let message = format!("no address for {host}");
                    return Err(io::Error::new(io::ErrorKind::NotFound, message));
                }
                Ok(addrs)
            }),
        }
    }
}

/// The future of [`LocalHandle::call_in_thread`].
#[must_use = "futures do nothing unless awaited"]
pub struct InThread<T> {
    handle: LocalHandle,
    /// Until first polled.
    work: Option<Work<T>>,
    reply: Rc<Reply<Result<T, WorkPanicked>>>,
}

impl<T> fmt::Debug for InThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InThread")
            .field("started", &self.work.is_none())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Future for InThread<T> {
    type Output = Result<T, WorkPanicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = self.reply.poll(cx);
        if let Some(work) = self.work.take() {
            let reply = self.reply.clone();
            self.handle.defer(move |reactor| {
                reactor.call_in_thread(work, move |_, result| reply.set(result));
            });
        }
        polled
    }
}

/// The future of [`LocalHandle::lookup_host`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct LookupHost {
    inner: InThread<io::Result<Vec<SocketAddr>>>,
}

impl Future for LookupHost {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            Poll::Ready(Err(panicked)) => Poll::Ready(Err(io::Error::other(panicked.to_string()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
