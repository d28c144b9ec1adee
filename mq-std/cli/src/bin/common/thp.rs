//! Transparent huge pages off for `mq peer`, not for `mqd`.
//!
//! mimalloc (`alloc.rs`) asks the kernel for transparent huge pages
//! (`MADV_HUGEPAGE`), so each thread's heap takes memory 2 MiB at a time,
//! every one cleared by the kernel on its first touch. The bench's peers
//! (`mq-peer-load`, which includes this file, so they run as `mq peer`
//! does) grew to 110 MB resident against 30 MB under glibc's allocator, and
//! clearing those pages was 11 % of their CPU; without huge pages they use
//! 17 to 34 % less CPU on workloads 7 to 9. `mqd` keeps them: on its
//! workload 1 it was no faster without them, its median rate lower in
//! three series of four. BENCHMARKS.md, "Transparent huge pages (issue 13)".

/// Turns transparent huge pages off for this process (Linux; elsewhere there
/// are none to turn off). The flag holds for memory the process has already
/// mapped too, from its next page fault on, and for the programs it starts
/// (the kernel keeps it across `fork` and `execve`): call it where the peer
/// starts, not for every command.
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: PR_SET_THP_DISABLE reads its arguments as integers and
        // touches no memory of ours.
        let set = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
        if set != 0 {
            // Kernels before 3.15: huge pages stay on, the peer works as
            // before, only with more memory.
            let e = std::io::Error::last_os_error();
            eprintln!("mq: transparent huge pages stay on ({e})");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_has_huge_pages_off() {
        super::no_huge_pages();
        let unused: libc::c_ulong = 0;
        // SAFETY: as above; PR_GET_THP_DISABLE returns the flag.
        let off = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, unused, unused, unused, unused) };
        assert_eq!(off, 1);
    }
}
