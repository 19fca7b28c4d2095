//! FTP (RFC 959, with the later RFCs' commands), sans-I/O: [`command`] parses the control
//! connection's command lines into [`Command`]s, [`reply`] writes the server's replies and
//! reads them back on a client ([`ReplyParser`]). No
//! sockets and no files here: the server and client drive these.

pub mod command;
pub mod reply;

pub use command::{Command, CommandError, TransferType};
pub use reply::{Reply, ReplyError, ReplyParser};
