//! Async tasks on the reactor: futures spawned on the reactor's own thread, polled there when
//! their waker is called, next to the protocols (Twisted's `Deferred` with `async def`, as
//! `ensureDeferred` runs it).
//!
//! - [`Reactor::spawn_task`](crate::Reactor::spawn_task) (or [`LocalHandle::spawn_task`] from a task)
//!   starts a task and returns its [`JoinHandle`]; [`ReactorHandle::spawn_task`](crate::ReactorHandle::spawn_task)
//!   does it from another thread and returns a [`RemoteJoinHandle`].
//! - A task reaches the reactor through a [`LocalHandle`]: sleeps and timeouts on the
//!   reactor's clock, and [`LocalHandle::call`] for any reactor method.
//! - A task's waker works from any thread, so futures that need only `std::task::Waker`
//!   (channels from `futures-channel` or `async-channel`, say) run here. Futures that need
//!   tokio's runtime (its sockets, timers) do not: run those on a tokio runtime on another
//!   thread, and send their results over a channel.
//!
//! A task that panics is dropped, the panic logged, and its handle gives
//! [`JoinError::is_panic`]; the reactor goes on. Tasks still pending when the reactor is
//! dropped are dropped, in the order they were spawned, before anything else the reactor
//! holds (their handles give [`JoinError::is_cancelled`]). `run` returning does not drop
//! them: a later `run` goes on with them.

mod blocking;
mod connect;
mod connection;
mod join;
mod local;
mod remote;
pub(crate) mod runner;
mod waker;

pub use blocking::{InThread, LookupHost};
pub use connect::{serve_tasks, Connect, TaskServer};
pub use connection::{AsyncConnection, ConnectionWriter, TaskProtocol, DEFAULT_READ_LIMIT};
pub use join::{JoinError, JoinHandle};
pub(crate) use local::new_task;
pub use local::{CallResult, Elapsed, LocalHandle, Sleep, Timeout};
pub use remote::RemoteJoinHandle;
pub(crate) use remote::{RemoteSlot, RemoteTask, Unstarted};
