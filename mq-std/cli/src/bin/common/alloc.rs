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

/// How long mimalloc keeps memory freed by the program before handing it
/// back to the system, in milliseconds (its default is 10).
///
/// With 10 ms, the pages a burst of messages frees are returned between two
/// group commits of the log and faulted in, zeroed by the kernel, at the
/// next: `clear_page_erms` was 16 % of a peer run's samples at 4 KiB
/// (`perf record -g mq-peer-load --shape one --size 4096`), and the run
/// took 15 to 25 % less CPU with a second (BENCHMARKS.md, "The allocator's
/// purge delay"). Memory still goes back to the system after a second idle.
#[cfg(unix)]
const PURGE_DELAY_MS: i64 = 1_000;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h` of the v3 sources
/// libmimalloc-sys builds; its Rust bindings do not name it).
#[cfg(unix)]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's defaults; call first thing in `main`. mimalloc's
/// environment (`MIMALLOC_PURGE_DELAY=...`) still overrides them. Windows
/// keeps the system allocator, so there is nothing to set there.
pub fn configure() {
    #[cfg(unix)]
    // SAFETY: `mi_option_set_default` only stores the value (when the
    // environment did not set it); mimalloc reads its options from any
    // thread at any time, and an option's value is a plain `long`.
    unsafe {
        libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as _);
    }
}
