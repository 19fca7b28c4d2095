//! The responses of one connection, in request order: each request gets a slot when its head
//! arrives; a slot's bytes go to the connection only once every earlier response is complete
//! (RFC 9112 §9.3.2: responses to pipelined requests go in the order of the requests). Shared
//! by the connection's protocol and its [`Responder`](super::Responder)s, which may answer
//! long after the request, from any callback that has the reactor.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use log::debug;
use torsion_reactor::{ConnectionId, FileSegment, Protocol, Reactor, ReactorHandle};

use super::date::DateCache;
use crate::http::codec::HttpDate;

/// A call made once the producer of a streamed body may write again.
pub(super) type ResumeCall = Box<dyn FnOnce(&mut Reactor)>;

/// The pipeline of one connection, shared by its protocol and its responders.
pub(super) type SharedPipeline = Rc<RefCell<Pipeline>>;

/// A piece of a response not yet handed to the connection.
enum Piece {
    Bytes(Bytes),
    File(FileSegment),
}

/// One response being produced.
#[derive(Default)]
pub(super) struct Slot {
    /// What is not yet handed to the connection, in order.
    queue: Vec<Piece>,
    /// Small writes gathered before they join `queue`.
    staging: BytesMut,
    /// The response is complete.
    done: bool,
    /// The connection closes after this response.
    close_after: bool,
    /// Called when the streaming producer of this response may write again.
    on_resume: Option<ResumeCall>,
}

impl Slot {
    /// Appends `data` without copying it.
    pub(super) fn put_bytes(&mut self, data: Bytes) {
        self.stage_out();
        self.queue.push(Piece::Bytes(data));
    }

    /// Appends a range of a file (sent by the kernel, or read when it is sent).
    pub(super) fn put_file(&mut self, segment: FileSegment) {
        self.stage_out();
        self.queue.push(Piece::File(segment));
    }

    /// The staging buffer, for the serializer to write into.
    pub(super) fn staging(&mut self) -> &mut BytesMut {
        &mut self.staging
    }

    /// Marks the response complete; `close` closes the connection after it.
    pub(super) fn finish(&mut self, close: bool) {
        self.done = true;
        self.close_after |= close;
    }

    fn stage_out(&mut self) {
        if !self.staging.is_empty() {
            self.queue.push(Piece::Bytes(self.staging.split().freeze()));
        }
    }
}

/// The connection's responses in request order, and what decides when its producers run.
pub(super) struct Pipeline {
    id: ConnectionId,
    /// The sequence number of `slots[0]`.
    front_seq: u64,
    slots: VecDeque<Slot>,
    /// `pause_writing` came and `resume_writing` has not.
    paused: bool,
    /// Queue length past which a streaming producer is told to pause at once (the
    /// connection's high watermark: it hears `pause_writing` at the end of the turn anyway).
    high_water: usize,
    /// The connection is gone: everything is dropped.
    gone: bool,
    /// A response closed the connection (or it is closing): nothing more is written.
    closing: bool,
    /// Close once the last response is out (the peer half-closed).
    close_when_done: bool,
    /// A responder was dropped or finished outside a pump: pump at the next chance.
    pub(super) needs_pump: bool,
    /// The protocol the connection switches to, set by
    /// [`Responder::switch_protocols`](super::Responder::switch_protocols) with its `101`.
    pub(super) upgrade: Option<Box<dyn Protocol>>,
    /// Reading stopped with the pipeline full: the connection is woken when a response
    /// completes, to read the requests it stopped before.
    pub(super) stalled: bool,
    /// Wakes the connection from where there is no reactor (a responder dropped unanswered).
    waker: ReactorHandle,
    date: Rc<RefCell<DateCache>>,
    /// The staging buffer of the last response sent, emptied, for the next one: a response
    /// head is serialized into it without allocating.
    spare: BytesMut,
}

/// Staging buffers up to this capacity are kept for the next response.
const SPARE_CAPACITY: usize = 4096;

impl Pipeline {
    /// An empty pipeline for connection `id`.
    pub(super) fn new(
        id: ConnectionId,
        high_water: usize,
        date: Rc<RefCell<DateCache>>,
        waker: ReactorHandle,
    ) -> SharedPipeline {
        Rc::new(RefCell::new(Pipeline {
            id,
            front_seq: 0,
            slots: VecDeque::new(),
            paused: false,
            high_water,
            gone: false,
            closing: false,
            close_when_done: false,
            needs_pump: false,
            stalled: false,
            upgrade: None,
            waker,
            date,
            spare: BytesMut::new(),
        }))
    }

    /// The connection.
    pub(super) fn id(&self) -> ConnectionId {
        self.id
    }

    /// Opens a slot for the next request's response; returns its sequence number.
    pub(super) fn push(&mut self) -> u64 {
        let staging = std::mem::take(&mut self.spare);
        self.slots.push_back(Slot {
            staging,
            ..Slot::default()
        });
        self.front_seq + self.slots.len() as u64 - 1
    }

    /// Requests the connection has had (each opened a slot), answered or not.
    pub(super) fn requests(&self) -> u64 {
        self.front_seq + self.slots.len() as u64
    }

    /// Responses not yet complete and sent.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The slot of response `seq`, unless it is gone (sent, or the connection closed).
    pub(super) fn slot(&mut self, seq: u64) -> Option<&mut Slot> {
        if self.gone || self.closing {
            return None;
        }
        let index = usize::try_from(seq.checked_sub(self.front_seq)?).ok()?;
        self.slots.get_mut(index)
    }

    /// Whether response `seq` is the one on the wire now.
    pub(super) fn is_front(&self, seq: u64) -> bool {
        seq == self.front_seq && !self.slots.is_empty()
    }

    /// Whether the producer of response `seq` should hold off: it is not on the wire yet,
    /// the connection's queue is past its high watermark, or the connection is gone.
    pub(super) fn should_pause(&self, seq: u64, reactor: &Reactor) -> bool {
        self.gone
            || self.closing
            || !self.is_front(seq)
            || self.paused
            || reactor.queued_bytes(self.id) > self.high_water
    }

    /// A responder finished or was dropped where there is no reactor to pump with: the
    /// connection is woken to pump.
    pub(super) fn pump_later(&mut self) {
        self.needs_pump = true;
        // Only fails once the reactor is gone, and with it the connection.
        let _ = self.waker.wake(self.id);
    }

    /// The `Date` for a response made now.
    pub(super) fn date(&self, reactor: &Reactor) -> HttpDate {
        self.date.borrow_mut().at(reactor.now())
    }

    /// Records `pause_writing` (`true`) or `resume_writing` (`false`); on resume returns the
    /// front producer's resume call.
    pub(super) fn set_paused(&mut self, paused: bool) -> Option<ResumeCall> {
        self.paused = paused;
        if paused {
            return None;
        }
        self.slots.front_mut()?.on_resume.take()
    }

    /// Registers the resume call of response `seq`'s producer.
    pub(super) fn on_resume(&mut self, seq: u64, call: ResumeCall) {
        if let Some(slot) = self.slot(seq) {
            slot.on_resume = Some(call);
        }
    }

    /// The connection closes once every response is out (at once if none is pending).
    pub(super) fn close_when_done(&mut self, reactor: &mut Reactor) {
        self.close_when_done = true;
        if self.slots.is_empty() {
            self.close(reactor);
        }
    }

    /// The connection is gone: drops every response and producer.
    pub(super) fn lost(&mut self) {
        self.gone = true;
        self.slots.clear();
        self.stalled = false;
    }

    /// Hands the connection what is ready, in order: the front response's bytes, and while
    /// the front is complete, the next one's. Returns the resume call of a streaming
    /// producer that reached the front, to be called once the pipeline is no longer borrowed.
    pub(super) fn pump(&mut self, reactor: &mut Reactor) -> Option<ResumeCall> {
        self.needs_pump = false;
        let mut advanced = false;
        while let Some(front) = self.slots.front_mut() {
            if self.gone || self.closing {
                break;
            }
            for piece in front.queue.drain(..) {
                match piece {
                    Piece::Bytes(bytes) => reactor.write_bytes_to(self.id, bytes),
                    Piece::File(segment) => reactor.write_file_to(self.id, segment),
                };
            }
            // Staged bytes (a head, a small body) follow the queued ones; copied into the
            // connection's queue, which the reactor would do for small `Bytes` anyway, so the
            // staging buffer keeps its memory for the next response.
            if !front.staging.is_empty() {
                reactor.write_to(self.id, &front.staging);
                front.staging.clear();
            }
            if !front.done {
                break;
            }
            let close = front.close_after;
            if let Some(sent) = self.slots.pop_front() {
                if sent.staging.capacity() <= SPARE_CAPACITY {
                    self.spare = sent.staging;
                }
            }
            self.front_seq += 1;
            advanced = true;
            if close || (self.close_when_done && self.slots.is_empty()) {
                self.close(reactor);
            }
        }
        if advanced {
            if std::mem::take(&mut self.stalled) {
                reactor.wake(self.id);
            }
            return self.slots.front_mut().and_then(|s| s.on_resume.take());
        }
        None
    }

    /// The last response is handed over: nothing more is written, and the connection is
    /// woken to close (it decides how: at once, or lingering; it may be the one pumping, and
    /// then closes before the wake comes).
    fn close(&mut self, reactor: &mut Reactor) {
        debug!("connection {}: closing after its last response", self.id);
        self.abandon();
        reactor.wake(self.id);
    }

    /// Whether the connection is to close: nothing more is written.
    pub(super) fn is_closing(&self) -> bool {
        self.closing
    }

    /// The connection closes now, whatever is pending: every response not yet handed over
    /// is dropped (their responders find no slot and answer nothing).
    pub(super) fn abandon(&mut self) {
        self.closing = true;
        self.slots.clear();
        self.stalled = false;
    }
}

/// Pumps `pipeline` and calls the resume call it returns.
pub(super) fn pump(pipeline: &SharedPipeline, reactor: &mut Reactor) {
    let resume = pipeline.borrow_mut().pump(reactor);
    if let Some(resume) = resume {
        resume(reactor);
    }
}
