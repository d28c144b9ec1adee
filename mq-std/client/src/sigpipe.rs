//! A write to a socket whose other end is gone raises `SIGPIPE` on Unix,
//! whose default action ends the process. Rust programs ignore it from
//! `main` on, so such a write fails with `EPIPE` instead; a C, C++ or other
//! host of libmq keeps the default, and a peer or broker that goes away
//! while libmq's threads write to it (vectored writes use `writev`, which
//! has no `MSG_NOSIGNAL`) killed the whole program. libmq's own threads
//! block the signal: only their writes are concerned, the host's handling
//! of it elsewhere is left as it is, and a write that raised it fails with
//! `EPIPE` as in a Rust program (the signal stays pending on that thread,
//! blocked, harmless).

/// Blocks `SIGPIPE` in the calling thread (for threads libmq starts: the
/// blocking client's I/O thread, a peer's runtime).
#[cfg(unix)]
pub fn block_sigpipe_in_this_thread() {
    // SAFETY: `sigemptyset`, `sigaddset` and `pthread_sigmask` are given a
    // signal set on this stack, initialised by `sigemptyset` before use;
    // they change only the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
    }
}

/// Windows has no `SIGPIPE`: a write to a closed socket fails with an
/// error there anyway.
#[cfg(not(unix))]
pub fn block_sigpipe_in_this_thread() {}
