//! FTP (RFC 959, with the later RFCs' commands), sans-I/O: [`command`] parses the control
//! connection's command lines into [`Command`]s, [`reply`] writes the server's replies and
//! reads them back on a client ([`ReplyParser`]); no sockets and no files there. With the
//! `reactor` feature, [`server`] serves a directory over them.

pub mod command;
pub mod reply;
#[cfg(feature = "reactor")]
pub mod server;

pub use command::{Command, CommandError, TransferType};
pub use reply::{Reply, ReplyError, ReplyParser};
