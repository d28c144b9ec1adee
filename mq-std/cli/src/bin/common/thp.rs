//! Transparent huge pages off for `mq` (and `mq peer`), not for `mqd`.
//!
//! mimalloc (`alloc.rs`) asks the kernel for transparent huge pages
//! (`MADV_HUGEPAGE`), so each thread's heap takes memory 2 MiB at a time,
//! every one cleared by the kernel on its first touch. The bench's peers
//! (`mq-peer-load`, which includes this file, so they run as `mq peer`
//! does) grew to 110 MB resident against 30 MB under glibc's allocator, and
//! clearing those pages was 11 % of their CPU; without huge pages they use
//! 17 to 34 % less CPU on workloads 7 to 9. `mqd` keeps them: on its
//! workload 1 it was no faster without them, its median rate lower in two
//! series of two. BENCHMARKS.md, "Transparent huge pages (issue 13)".

/// Turns transparent huge pages off for this process (Linux; elsewhere there
/// are none to turn off). The flag holds for memory the process has already
/// mapped too, from its next page fault on; call it first thing in `main`.
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours. It fails only on kernels older than 3.15, which then keep
    // huge pages on: nothing to report.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_has_huge_pages_off() {
        super::no_huge_pages();
        // SAFETY: as above; PR_GET_THP_DISABLE returns the flag.
        let off = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(off, 1);
    }
}
