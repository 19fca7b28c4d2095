//! Passive data connections: a listener opened by `PASV`/`EPSV` that accepts one connection,
//! from the control connection's peer address only, and the transfer run on it. The control
//! connection hears how the transfer ended as its final reply, written from here.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use log::{debug, warn};
use torsion_reactor::{
    Address, ConnectionId, Context, DisconnectReason, Factory, FileSegment, ListeningPort,
    Protocol, Reactor, WriteProgress,
};

use crate::ftp::Reply;

/// How much of a file is queued at a time: the next window goes once the last has left, so
/// one fast client cannot hold the reactor's turn for a whole large file.
const FILE_WINDOW: u64 = 1 << 20;

/// What goes over a data connection.
pub(super) enum Transfer {
    /// Bytes to send (a listing).
    Bytes(Vec<u8>),
    /// A range of a file to send (`RETR`).
    File(FileSegment),
    /// Bytes to receive into a file (`STOR`).
    Receive(File),
}

/// One passive data channel, shared by the control connection, the listener's factory and
/// the data connection.
pub(super) struct Channel {
    control: ConnectionId,
    /// The only address a data connection is taken from.
    peer_ip: IpAddr,
    port: Option<ListeningPort>,
    connection: Option<ConnectionId>,
    /// A transfer asked for, not yet started (the data connection is not there yet, or
    /// has not been woken to start it).
    pending: Option<Transfer>,
    /// A transfer was handed to the data connection.
    started: bool,
}

/// The control connection's handle on its passive channel.
pub(super) type SharedChannel = Rc<RefCell<Channel>>;

/// Opens a passive listener on `local_ip`, port 0, for a data connection from `peer_ip`.
pub(super) fn open(
    reactor: &mut Reactor,
    control: ConnectionId,
    local_ip: IpAddr,
    peer_ip: IpAddr,
) -> std::io::Result<(SharedChannel, u16)> {
    let channel = Rc::new(RefCell::new(Channel {
        control,
        peer_ip,
        port: None,
        connection: None,
        pending: None,
        started: false,
    }));
    let factory = DataFactory {
        channel: channel.clone(),
        accepted: false,
    };
    let port = reactor.listen_tcp((local_ip, 0).into(), factory)?;
    channel.borrow_mut().port = Some(port);
    Ok((channel, port.local_addr().port()))
}

/// Hands `transfer` to the channel's data connection, now if it is there (woken to start
/// it), or when it arrives.
pub(super) fn start(channel: &SharedChannel, reactor: &mut Reactor, transfer: Transfer) {
    let mut state = channel.borrow_mut();
    state.pending = Some(transfer);
    if let Some(id) = state.connection {
        reactor.wake(id);
    }
}

/// Closes the channel: its listener, and its data connection if any (aborted: the transfer,
/// if one ran, is cut short).
pub(super) fn close(channel: &SharedChannel, reactor: &mut Reactor) {
    let mut state = channel.borrow_mut();
    if let Some(port) = state.port.take() {
        port.stop_listening(reactor);
    }
    state.pending = None;
    if let Some(id) = state.connection.take() {
        reactor.abort_connection(id);
    }
}

/// Closes the channel if its transfer is still waiting for a data connection; whether it
/// did.
pub(super) fn abandon_if_unconnected(channel: &SharedChannel, reactor: &mut Reactor) -> bool {
    let waiting = {
        let state = channel.borrow();
        state.pending.is_some() && state.connection.is_none()
    };
    if waiting {
        close(channel, reactor);
    }
    waiting
}

/// Accepts exactly one connection, from the control connection's peer address.
struct DataFactory {
    channel: SharedChannel,
    accepted: bool,
}

impl Factory for DataFactory {
    type Protocol = DataConnection;

    fn build_protocol(&mut self, peer: Address) -> Option<DataConnection> {
        let expected = self.channel.borrow().peer_ip;
        let from = peer.as_tcp().map(|addr| addr.ip());
        if from != Some(expected) {
            warn!("ftp: data connection from {peer} refused: the control connection is from {expected}");
            return None;
        }
        if self.accepted {
            warn!("ftp: a second data connection from {peer} refused");
            return None;
        }
        self.accepted = true;
        Some(DataConnection {
            channel: self.channel.clone(),
            receiving: None,
            sending: None,
            failed: false,
        })
    }
}

/// The data connection: runs the channel's transfer, then reports to the control connection.
struct DataConnection {
    channel: SharedChannel,
    receiving: Option<File>,
    /// The rest of a file being sent: the file, the next offset, the end.
    sending: Option<(Arc<File>, u64, u64)>,
    /// Writing a received file failed.
    failed: bool,
}

impl DataConnection {
    fn start_pending(&mut self, cx: &mut Context<'_>) {
        let Some(transfer) = self.channel.borrow_mut().pending.take() else {
            return;
        };
        self.channel.borrow_mut().started = true;
        match transfer {
            Transfer::Bytes(bytes) => {
                cx.write(&bytes);
                cx.lose_connection();
            }
            Transfer::File(segment) => {
                let start = segment.offset();
                self.sending = Some((segment.file().clone(), start, start + segment.len()));
                cx.watch_writes(true);
                self.send_window(cx);
            }
            Transfer::Receive(file) => self.receiving = Some(file),
        }
    }

    /// Queues the next window of the file being sent; closes once all is queued.
    fn send_window(&mut self, cx: &mut Context<'_>) {
        let Some((file, next, end)) = &mut self.sending else {
            return;
        };
        let len = (*end - *next).min(FILE_WINDOW);
        if len > 0 {
            cx.write_file(FileSegment::new(file.clone(), *next, len));
            *next += len;
        }
        if *next >= *end {
            self.sending = None;
            cx.watch_writes(false);
            cx.lose_connection();
        }
    }
}

impl Protocol for DataConnection {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let port = {
            let mut state = self.channel.borrow_mut();
            state.connection = Some(cx.id());
            state.port.take()
        };
        if let Some(port) = port {
            port.stop_listening(cx.reactor());
        }
        self.start_pending(cx);
    }

    fn woken(&mut self, cx: &mut Context<'_>) {
        self.start_pending(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        // The client may send as soon as it reads `150`, before this connection is woken.
        self.start_pending(cx);
        let Some(file) = &mut self.receiving else {
            // Nothing asked for bytes from the client: they are dropped.
            return;
        };
        if let Err(e) = file.write_all(data) {
            warn!("ftp: writing an uploaded file failed: {e}");
            self.failed = true;
            self.receiving = None;
            cx.abort_connection();
        }
    }

    fn write_progress(&mut self, cx: &mut Context<'_>, progress: WriteProgress) {
        if progress.drained {
            self.send_window(cx);
        }
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        // An empty upload may end before this connection is woken to start it.
        self.start_pending(cx);
        cx.lose_connection();
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        let (control, started) = {
            let mut state = self.channel.borrow_mut();
            if state.connection != Some(cx.id()) {
                // Closed by the control connection (a new channel, or it went away).
                return;
            }
            state.connection = None;
            (state.control, std::mem::take(&mut state.started))
        };
        self.receiving = None;
        if !started {
            debug!(
                "ftp: data connection {} closed before any transfer",
                cx.id()
            );
            return;
        }
        let reply = if reason.is_clean() && !self.failed {
            Reply::new(226, "Transfer complete.")
        } else {
            Reply::new(426, "Connection closed; transfer aborted.")
        };
        cx.write_to(control, &reply.to_bytes());
    }
}
