//! The codec's tests: every framing path and every rejection of both decoders, each input fed
//! in every chunk size from 1 byte up (and with a consumer that stops after each event), both
//! encoders' exact output, and random input that must never panic nor grow the buffer past
//! its limit.

mod random;
mod request_decode;
mod request_encode;
mod request_limits;
mod request_refusals;
mod response_decode;
mod response_encode;
