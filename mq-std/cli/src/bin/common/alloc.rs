//! The allocator of `mqd` and `mq` on Unix: mimalloc.
//!
//! Every message passes through several short-lived allocations (the broker's
//! shared record, reader and writer chunks, the clients' messages). Under glibc's
//! allocator those cost about 15 % of `mqd`'s time in a QoS 1 run (`_int_malloc`,
//! `_int_free`, `malloc_consolidate` in a `perf` profile); mimalloc's per-thread
//! free lists make them cheap. The library crates leave the choice to the program.
//!
//! `mq-peer-load` (xtask/peers/mesh) includes this file too, so the bench's
//! peers run on what `mq peer` and `mqd` run on.

#[cfg(unix)]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
