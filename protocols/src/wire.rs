//! The simplest protocols, Twisted's `twisted.protocols.wire`: [`Echo`] and [`Discard`].
//! Useful as servers to test clients against, and as the smallest complete protocols.

use torsion_reactor::{Context, Protocol};

/// Sends every byte back (RFC 862), with flow control: while the echoes back up past the
/// write-buffer high watermark (a peer that sends without reading), it stops reading, so the
/// server's memory for the connection stays bounded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        cx.resume_reading();
    }
}

/// Reads and throws away every byte (RFC 863).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Protocol for Discard {
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}
