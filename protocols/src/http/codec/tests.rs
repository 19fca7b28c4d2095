//! The codec's tests: every framing path and every rejection, each input fed in every chunk
//! size from 1 byte up (and with a consumer that stops after each event), the serializer's
//! exact output, and random input that must never panic nor grow the buffer past its limit.

mod decode;
mod encode;
mod random;
mod response;
