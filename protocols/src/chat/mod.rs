//! A multi-user chat, the protocol behind the `chat_server` example: [`room`] holds its
//! rules sans-I/O (lines in, who hears what out); with the `reactor` feature, [`server`] runs
//! the room on connections, one [`LineReceiver`](crate::line::LineReceiver) per member, and
//! [`web`] lets browsers into the same room (a page and a WebSocket).

pub mod room;
#[cfg(feature = "reactor")]
pub mod server;
#[cfg(feature = "reactor")]
pub mod web;

pub use room::{ChatRoom, Output};
#[cfg(feature = "reactor")]
pub use server::{ChatMember, ChatServer};
#[cfg(feature = "reactor")]
pub use web::ChatWeb;
