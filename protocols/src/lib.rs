//! torsion's built-in protocols. Each is a sans-I/O core (a pure state machine fed bytes,
//! importing nothing from the reactor) plus, with the default `reactor` feature, a thin
//! [`Protocol`](torsion_reactor::Protocol) adapter over it.
//!
//! So far: [`wire`], the smallest protocols (echo, discard). Line, length-prefixed and HTTP
//! protocols arrive in later releases.

#[cfg(feature = "reactor")]
pub mod wire;
