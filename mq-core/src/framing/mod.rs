//! Transport framing: how frames are delimited on byte streams and serial lines.
//!
//! - [`stream`]: TCP and other reliable byte streams; each frame is prefixed by its
//!   length as a varint.
//! - [`serial`]: UARTs and other lossy byte lines; each frame is COBS-encoded with a
//!   CRC-32C and ends in a zero byte, so a receiver resynchronises after garbage.

pub mod serial;
pub mod stream;
