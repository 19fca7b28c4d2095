//! Reusable wrappers over any protocol or factory (Twisted's `twisted.protocols.policies`):
//! an idle timeout ([`TimeoutProtocol`], Twisted's `TimeoutMixin`) and throughput limits
//! ([`ThrottlingFactory`], Twisted's `ThrottlingFactory`).
//!
//! A wrapper is the connection's protocol; the wrapped one hears every callback through it.
//! Timers the wrapped protocol schedules with [`Context::call_later`](crate::Context::call_later)
//! name the connection's protocol type, which is now the wrapper's: schedule them with the
//! wrapper's type and reach the inner protocol with `inner_mut`.

mod throttling;
mod timeout;

pub use throttling::{ThrottledProtocol, ThrottlingFactory};
pub use timeout::TimeoutProtocol;
