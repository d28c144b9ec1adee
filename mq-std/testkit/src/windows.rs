//! What the harness asks of Windows that std does not offer: delivering a
//! console control event to `mqd`, and its working set.
//!
//! A console delivers Ctrl-C, Ctrl-Break and its closing to a process by
//! starting a thread in it at `kernel32!CtrlRoutine` with the event as the
//! argument; that routine runs the handlers the process registered
//! (`SetConsoleCtrlHandler`, which tokio's `signal::windows` uses). The
//! harness does the same with `CreateRemoteThread`, so it reaches exactly the
//! `mqd` it started, whatever console (if any) that one has: sending Ctrl-C
//! through `GenerateConsoleCtrlEvent` would reach every process on the
//! test's console, and nothing sends `CTRL_CLOSE_EVENT` but a console window
//! closing.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::process::Child;

pub const CTRL_C_EVENT: u32 = 0;
pub const CTRL_CLOSE_EVENT: u32 = 2;

type Handle = *mut c_void;

#[repr(C)]
#[derive(Default)]
struct ProcessMemoryCounters {
    cb: u32,
    page_fault_count: u32,
    peak_working_set_size: usize,
    working_set_size: usize,
    quota_peak_paged_pool_usage: usize,
    quota_paged_pool_usage: usize,
    quota_peak_non_paged_pool_usage: usize,
    quota_non_paged_pool_usage: usize,
    pagefile_usage: usize,
    peak_pagefile_usage: usize,
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn GetModuleHandleW(name: *const u16) -> Handle;
    fn GetProcAddress(module: Handle, name: *const u8) -> *const c_void;
    fn CreateRemoteThread(
        process: Handle,
        attributes: *const c_void,
        stack_size: usize,
        start: *const c_void,
        parameter: *const c_void,
        flags: u32,
        thread_id: *mut u32,
    ) -> Handle;
    fn WaitForSingleObject(handle: Handle, milliseconds: u32) -> u32;
    fn CloseHandle(handle: Handle) -> i32;
    fn K32GetProcessMemoryInfo(
        process: Handle,
        counters: *mut ProcessMemoryCounters,
        size: u32,
    ) -> i32;
}

/// Starts a thread in `child` at `kernel32!CtrlRoutine(event)`, as a console
/// does, and waits (briefly) for it to have started the handlers.
pub fn console_event(child: &Child, event: u32) -> io::Result<()> {
    let kernel32: Vec<u16> = "kernel32.dll\0".encode_utf16().collect();
    // SAFETY: plain Win32 calls on a NUL-terminated name, the process handle
    // `child` owns (all access: it created the process) and a routine
    // address that is the same in every process (kernel32 is mapped at one
    // address per boot); the thread handle is closed once.
    unsafe {
        let module = GetModuleHandleW(kernel32.as_ptr());
        if module.is_null() {
            return Err(io::Error::last_os_error());
        }
        let routine = GetProcAddress(module, c"CtrlRoutine".as_ptr().cast());
        if routine.is_null() {
            return Err(io::Error::last_os_error());
        }
        let thread = CreateRemoteThread(
            child.as_raw_handle(),
            std::ptr::null(),
            0,
            routine,
            event as usize as *const c_void,
            0,
            std::ptr::null_mut(),
        );
        if thread.is_null() {
            return Err(io::Error::last_os_error());
        }
        // The routine of a terminating event (close) never returns while mqd
        // shuts down: do not wait for it long.
        WaitForSingleObject(thread, 100);
        CloseHandle(thread);
    }
    Ok(())
}

/// The working set of `child`, in bytes.
pub fn working_set(child: &Child) -> io::Result<u64> {
    let mut counters = ProcessMemoryCounters {
        cb: size_of::<ProcessMemoryCounters>() as u32,
        ..Default::default()
    };
    // SAFETY: `counters` is a PROCESS_MEMORY_COUNTERS of the size it says.
    let ok = unsafe { K32GetProcessMemoryInfo(child.as_raw_handle(), &mut counters, counters.cb) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(counters.working_set_size as u64)
}
