//! The connection table: every connection in a generation-tagged table, the lists of those
//! that need the reactor's attention (dirty: to settle at the end of the turn; woken: to
//! tell), the buffer pool their write queues share and the read buffer they all read into,
//! and the operations on a connection by id. Nothing here calls a protocol: the reactor does
//! (`reactor/connections.rs`), between these steps.

mod connection;

use std::collections::HashMap;
use std::fmt;
use std::io;

use bytes::Bytes;
use log::debug;
use mio::Registry;

use crate::file_segment::FileSegment;
use crate::stream::{AnyStream, Bits, Fault, Stream};
use crate::table::{Key, Kind, Table};
use crate::write_queue::BufferPool;
use crate::{Address, Protocol};

pub(crate) use connection::{Connection, Phase, Then, WriteSide};

/// Size of the one read buffer all connections share. A whole UDP datagram fits; for TCP it
/// is large enough that one `read` usually drains the socket.
pub(crate) const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Bytes one connection may read per turn before the others get their go (fairness).
pub(crate) const READ_BUDGET_PER_TURN: usize = 4 * READ_BUFFER_SIZE;

/// Names one connection for as long as it lives. Copy it freely (into shared state, timers,
/// other protocols); once the connection is gone, the id is stale and every operation on it is
/// a no-op, even after its slot has been reused by a new connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub(crate) Key);

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({}.{})", self.0.index, self.0.generation)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.0.index, self.0.generation)
    }
}

/// Every connection of a reactor, and what the reactor must do about them.
pub(crate) struct Connections {
    table: Table<Connection>,
    /// Connections touched this turn, to settle before it ends.
    dirty: Vec<Key>,
    /// Connections woken and not yet told (each at most once: the `WOKEN` bit).
    woken: Vec<Key>,
    /// Drained write buffers for reuse by any connection.
    pub(crate) pool: BufferPool,
    /// The read buffer every connection reads into (out while a read loop runs).
    read_buf: Vec<u8>,
    /// Peer addresses a PROXY protocol header reported, which override the socket's.
    proxied_peers: HashMap<Key, Address>,
    /// A protocol that replaces the one running its callback once it returns.
    pub(crate) handover: Option<(Key, Box<dyn Protocol>)>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            table: Table::default(),
            dirty: Vec::new(),
            woken: Vec::new(),
            pool: BufferPool::default(),
            read_buf: vec![0; READ_BUFFER_SIZE],
            proxied_peers: HashMap::new(),
            handover: None,
        }
    }
}

impl Connections {
    /// The connection `key` names, unless it is gone.
    #[inline]
    pub(crate) fn get(&self, key: Key) -> Option<&Connection> {
        self.table.get(key)
    }

    /// The connection `key` names, mutably, unless it is gone.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut Connection> {
        self.table.get_mut(key)
    }

    /// Adds a connection over `stream`, registered with the poll under its token.
    pub(crate) fn insert(
        &mut self,
        registry: &Registry,
        mut connection: Connection,
    ) -> io::Result<Key> {
        let key = self.table.next_key()?;
        connection
            .stream
            .register(registry, key.token(Kind::Connection))?;
        self.table.insert_at(key, connection);
        Ok(key)
    }

    /// Takes a connection out of the table and the poll.
    pub(crate) fn remove(&mut self, registry: &Registry, key: Key) -> Option<Connection> {
        let mut connection = self.table.remove(key)?;
        self.proxied_peers.remove(&key);
        if let Err(e) = connection.stream.deregister(registry) {
            debug!("deregistering connection {}: {e}", ConnectionId(key));
        }
        Some(connection)
    }

    /// The peer address a PROXY protocol header reported for `key`, if any.
    pub(crate) fn proxied_peer(&self, key: Key) -> Option<&Address> {
        self.proxied_peers.get(&key)
    }

    /// Records the peer address a PROXY protocol header reported for a live connection.
    pub(crate) fn set_proxied_peer(&mut self, key: Key, peer: Address) {
        if self.table.get(key).is_some() {
            self.proxied_peers.insert(key, peer);
        }
    }

    /// Puts a new stream under a connection that is still connecting (the next address of
    /// its target), registered under the connection's token.
    pub(crate) fn replace_stream(
        &mut self,
        registry: &Registry,
        key: Key,
        mut stream: AnyStream,
    ) -> io::Result<()> {
        let Some(connection) = self.table.get_mut(key) else {
            return Ok(());
        };
        stream.register(registry, key.token(Kind::Connection))?;
        let mut old = std::mem::replace(&mut connection.stream, stream);
        if let Err(e) = old.deregister(registry) {
            debug!("deregistering connection {}: {e}", ConnectionId(key));
        }
        Ok(())
    }

    /// The keys of every connection, with a view of each.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &Connection)> {
        self.table.iter()
    }

    /// Whether no connection is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Records that a connection needs settling at the end of this turn.
    #[inline]
    pub(crate) fn mark_dirty(&mut self, key: Key) {
        if let Some(conn) = self.table.get_mut(key) {
            mark(conn, key, &mut self.dirty);
        }
    }

    /// Whether some connection waits to be settled.
    pub(crate) fn any_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Hands over the dirty list (swapped with `into`, which must be empty).
    pub(crate) fn take_dirty(&mut self, into: &mut Vec<Key>) {
        std::mem::swap(into, &mut self.dirty);
    }

    /// Gives back an emptied list's memory, if it is the larger and the dirty list is empty
    /// (connections left dirty after the last round of a settle keep their place on it).
    pub(crate) fn return_dirty_list(&mut self, list: Vec<Key>) {
        if self.dirty.is_empty() && list.capacity() > self.dirty.capacity() {
            self.dirty = list;
        }
    }

    /// Wakes connection `key`: its protocol hears `woken` once, however many wakes come
    /// before it is told. False if `key` is stale.
    pub(crate) fn wake(&mut self, key: Key) -> bool {
        let Some(conn) = self.table.get_mut(key) else {
            return false;
        };
        if !conn.bits.has(Bits::WOKEN) {
            conn.bits.set(Bits::WOKEN);
            if conn.is_made() {
                self.woken.push(key);
            }
        }
        true
    }

    /// Queues the wake of a connection just made that was woken before.
    pub(crate) fn wake_if_woken(&mut self, key: Key) {
        if self
            .table
            .get(key)
            .is_some_and(|c| c.bits.has(Bits::WOKEN) && c.is_made())
        {
            self.woken.push(key);
        }
    }

    /// Whether some connection waits to be told it was woken.
    pub(crate) fn any_woken(&self) -> bool {
        !self.woken.is_empty()
    }

    /// Hands over the woken list.
    pub(crate) fn take_woken(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.woken)
    }

    /// The shared read buffer, taken for a read loop; give it back with
    /// [`put_read_buf`](Connections::put_read_buf).
    pub(crate) fn take_read_buf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.read_buf)
    }

    /// Gives back the shared read buffer.
    pub(crate) fn put_read_buf(&mut self, buf: Vec<u8>) {
        self.read_buf = buf;
    }

    /// Queues a copy of `data` on connection `key`. False, doing nothing, if it is gone, still
    /// connecting, or its write side is shut or shutting.
    #[inline]
    pub(crate) fn write(&mut self, key: Key, data: &[u8]) -> bool {
        let Some(conn) = writable(&mut self.table, key) else {
            return false;
        };
        if !data.is_empty() {
            conn.queue.push_slice(data, &mut self.pool);
            mark(conn, key, &mut self.dirty);
        }
        true
    }

    /// Queues `data` on connection `key` without copying it; as [`write`](Connections::write).
    pub(crate) fn write_bytes(&mut self, key: Key, data: Bytes) -> bool {
        let Some(conn) = writable(&mut self.table, key) else {
            return false;
        };
        if !data.is_empty() {
            conn.queue.push_bytes(data, &mut self.pool);
            mark(conn, key, &mut self.dirty);
        }
        true
    }

    /// Queues a file segment on connection `key`; as [`write`](Connections::write).
    pub(crate) fn write_file(&mut self, key: Key, segment: FileSegment) -> bool {
        let Some(conn) = writable(&mut self.table, key) else {
            return false;
        };
        if !segment.is_empty() {
            conn.queue.push_file(segment);
            mark(conn, key, &mut self.dirty);
        }
        true
    }

    /// Applies a lifecycle request (`lose`, `abort`, `shutdown_write`) and marks the
    /// connection for settling; false if it is gone or the request does not apply.
    pub(crate) fn request(
        &mut self,
        key: Key,
        change: impl FnOnce(&mut Connection) -> bool,
    ) -> bool {
        let Some(conn) = self.table.get_mut(key) else {
            return false;
        };
        if !change(conn) {
            return false;
        }
        mark(conn, key, &mut self.dirty);
        true
    }

    /// Flushes connection `key`'s queue: the bytes sent, or why the stream failed.
    #[inline]
    pub(crate) fn flush(&mut self, key: Key) -> Result<usize, Fault> {
        let Some(conn) = self.table.get_mut(key) else {
            return Ok(0);
        };
        if conn.write == WriteSide::Shut {
            return Ok(0);
        }
        conn.stream
            .write_queue(&mut conn.queue, &mut self.pool, &mut conn.bits)
    }

    /// Ends connection `key`'s stream cleanly before it closes or half-closes (TLS's
    /// `close_notify`): true once nothing is left to write.
    pub(crate) fn finish(&mut self, key: Key) -> Result<bool, Fault> {
        let Some(conn) = self.table.get_mut(key) else {
            return Ok(true);
        };
        let finished = conn.stream.finish(&mut self.pool, &mut conn.bits)?;
        Ok(finished && !conn.has_output())
    }
}

/// Marks `conn` dirty (once).
#[inline]
fn mark(conn: &mut Connection, key: Key, dirty: &mut Vec<Key>) {
    if !conn.bits.has(Bits::DIRTY) {
        conn.bits.set(Bits::DIRTY);
        dirty.push(key);
    }
}

/// The connection at `key` if it takes writes.
#[inline]
fn writable(table: &mut Table<Connection>, key: Key) -> Option<&mut Connection> {
    let conn = table.get_mut(key)?;
    if !conn.accepts_writes() {
        debug!(
            "write to connection {} dropped: not writable",
            ConnectionId(key)
        );
        return None;
    }
    Some(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_stays_small() {
        // The per-idle-connection memory target is 256 bytes including the table's slack.
        assert!(
            std::mem::size_of::<Connection>() <= 120,
            "{}",
            std::mem::size_of::<Connection>()
        );
    }
}
