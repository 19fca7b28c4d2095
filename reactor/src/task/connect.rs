//! Connecting from a task: [`LocalHandle::connect`] and [`LocalHandle::connect_endpoint`]
//! resolve to an [`AsyncConnection`]; [`serve_tasks`] hands each connection a listening port
//! accepts to a new task.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::blocking::Reply;
use super::connection::{AsyncConnection, TaskProtocol};
use super::{CallResult, LocalHandle};
use crate::endpoint::{ClientEndpoint, EndpointError};
use crate::{
    Address, ClientFactory, ConnectError, ConnectOptions, Connector, Factory, Reactor, Target,
    UnixAddress,
};

/// What a connect future resolves to.
type Outcome = Result<AsyncConnection, ConnectError>;

/// How the connect starts, once the future is first polled.
type Start = Box<dyn FnOnce(&mut Reactor, TaskClient) -> Option<Connector>>;

/// The answer of one connect, between the future and the client factory.
struct Pending {
    reply: Rc<Reply<Outcome>>,
    /// The future was dropped: a connection made after that is closed at once.
    abandoned: Cell<bool>,
    connector: Cell<Option<Connector>>,
    answered: Cell<bool>,
}

impl Pending {
    fn answer(&self, outcome: Outcome) {
        self.answered.set(true);
        if !self.abandoned.get() {
            self.reply.set(outcome);
        }
        // Abandoned: the connection is dropped here, which closes it.
    }
}

/// The client factory of a task's connect: hands the connection (or the failure) to the
/// future.
struct TaskClient {
    pending: Rc<Pending>,
}

impl ClientFactory for TaskClient {
    type Protocol = TaskProtocol;

    fn build_protocol(&mut self, peer: Address) -> TaskProtocol {
        let pending = self.pending.clone();
        TaskProtocol::new(
            peer,
            Box::new(move |_, connection| pending.answer(Ok(connection))),
        )
    }

    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        self.pending.answer(Err(error));
    }
}

impl LocalHandle {
    /// Connects to `target` as [`Reactor::connect`] does (TCP, or TLS with
    /// [`ConnectOptions::tls`], or a UNIX socket with [`Target::Unix`]; a host name is
    /// resolved on the thread pool) and resolves to the [`AsyncConnection`] once connected
    /// (and, for TLS, the handshake done), or to why it failed. Starts when first polled;
    /// dropping the future before it resolves abandons the attempt (or closes the
    /// connection just made).
    pub fn connect(&self, target: impl Into<Target>, options: ConnectOptions) -> Connect {
        let target = target.into();
        self.start_connect(Box::new(move |reactor, client| {
            Some(reactor.connect(target, client, options))
        }))
    }

    /// Connects to an endpoint string (`"tcp:host=example.com:port=80"`,
    /// `"tls:host=example.com:port=443"`, `"unix:path=/run/app.sock"`; see
    /// [`ClientEndpoint`]) as [`Reactor::connect_endpoint_with`] does, starting from
    /// `options`. A string that does not parse fails at once; trusted roots that cannot be
    /// loaded fail the future with [`ConnectError::Io`], saying why.
    pub fn connect_endpoint(
        &self,
        endpoint: &str,
        options: ConnectOptions,
    ) -> Result<Connect, EndpointError> {
        let endpoint: ClientEndpoint = endpoint.parse()?;
        Ok(self.start_connect(Box::new(move |reactor, client| {
            let pending = client.pending.clone();
            match reactor.connect_endpoint_with(endpoint, client, options) {
                Ok(connector) => Some(connector),
                Err(e) => {
                    pending.answer(Err(ConnectError::Io(io::Error::other(e.to_string()))));
                    None
                }
            }
        })))
    }

    fn start_connect(&self, start: Start) -> Connect {
        Connect {
            handle: self.clone(),
            start: Some(start),
            pending: Rc::new(Pending {
                reply: Reply::new(),
                abandoned: Cell::new(false),
                connector: Cell::new(None),
                answered: Cell::new(false),
            }),
        }
    }
}

/// The future of [`LocalHandle::connect`]: an [`AsyncConnection`], or why the attempt
/// failed.
#[must_use = "futures do nothing unless awaited"]
pub struct Connect {
    handle: LocalHandle,
    start: Option<Start>,
    pending: Rc<Pending>,
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("started", &self.start.is_none())
            .field("answered", &self.pending.answered.get())
            .finish_non_exhaustive()
    }
}

impl Future for Connect {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let polled = self.pending.reply.poll(cx);
        if let Some(start) = self.start.take() {
            let pending = self.pending.clone();
            self.handle.defer(move |reactor| {
                let client = TaskClient {
                    pending: pending.clone(),
                };
                pending.connector.set(start(reactor, client));
            });
        }
        polled
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        self.pending.abandoned.set(true);
        // A connection made and not taken: dropping it closes it.
        drop(self.pending.reply.take());
        if self.start.is_some() || self.pending.answered.get() {
            return;
        }
        let pending = self.pending.clone();
        self.handle.defer(move |reactor| {
            if let Some(connector) = pending.connector.get() {
                connector.stop_connecting(reactor);
            }
        });
    }
}

/// A [`Factory`] that hands each connection a listening port accepts to a new task:
/// `serve(connection)` makes the task's future, spawned on the reactor once the connection
/// is made. The task's output is dropped (a task that must report something sends it
/// elsewhere); dropping the connection closes it.
///
/// ```no_run
/// use torsion_reactor::task::serve_tasks;
/// use torsion_reactor::Reactor;
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new()?;
/// reactor.listen_tcp(
///     "127.0.0.1:7000".parse().unwrap(),
///     serve_tasks(|mut connection| async move {
///         while let Ok(Some(line)) = connection.read_line(1024).await {
///             let reply = format!("{}\n", line.to_uppercase());
///             if connection.write_all(reply).await.is_err() {
///                 break;
///             }
///         }
///     }),
/// )?;
/// reactor.run()
/// # }
/// ```
pub fn serve_tasks<S, F>(serve: S) -> TaskServer<S>
where
    S: FnMut(AsyncConnection) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    TaskServer {
        serve: Rc::new(RefCell::new(serve)),
    }
}

/// The factory of [`serve_tasks`].
pub struct TaskServer<S> {
    serve: Rc<RefCell<S>>,
}

impl<S> fmt::Debug for TaskServer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskServer").finish_non_exhaustive()
    }
}

impl<S, F> Factory for TaskServer<S>
where
    S: FnMut(AsyncConnection) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    type Protocol = TaskProtocol;

    fn build_protocol(&mut self, peer: Address) -> Option<TaskProtocol> {
        let serve = self.serve.clone();
        Some(TaskProtocol::new(
            peer,
            Box::new(move |reactor, connection| {
                let future = (serve.borrow_mut())(connection);
                drop(reactor.spawn_task(future));
            }),
        ))
    }
}

impl LocalHandle {
    /// Standard input and output as an [`AsyncConnection`] (see
    /// [`Reactor::stdio`](crate::Reactor::stdio)): reads give what arrives on stdin (its end
    /// is the peer's EOF), writes go to stdout with the same backpressure as a socket's.
    /// Fails as `Reactor::stdio` does (stdin or stdout already taken, or of a kind the
    /// reactor cannot watch).
    pub fn stdio(&self) -> CallResult<io::Result<AsyncConnection>> {
        self.call(|reactor| {
            let made = Rc::new(Cell::new(None));
            let slot = made.clone();
            let protocol = TaskProtocol::new(
                Address::Unix(UnixAddress::unnamed()),
                Box::new(move |_, connection| slot.set(Some(connection))),
            );
            reactor.stdio(protocol)?;
            // `connection_made` has run when `stdio` returns.
            made.take()
                .ok_or_else(|| io::Error::other("standard I/O was closed as it was opened"))
        })
    }
}
