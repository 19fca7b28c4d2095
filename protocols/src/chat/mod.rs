//! A multi-user chat, the protocol behind the `chat_server` example: [`room`] holds its
//! rules sans-I/O (lines in, who hears what out); with the `reactor` feature, [`server`] runs
//! the room on connections, one [`LineReceiver`](crate::line::LineReceiver) per member.

pub mod room;
#[cfg(feature = "reactor")]
pub mod server;

pub use room::{ChatRoom, Output};
#[cfg(feature = "reactor")]
pub use server::{ChatMember, ChatServer};
