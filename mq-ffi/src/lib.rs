//! The C ABI of mq.
//!
//! This crate will wrap the mio blocking client of `mq-std` in opaque handles with
//! a cbindgen-generated header. It exports no functions yet: a header that promised
//! calls which do not work would be worse than none.
