//! The mq applications' console lines: `println!` and `eprintln!` as
//! semihosting's write them (the same bytes, to the same stream), but through
//! one out-of-line writer each. Semihosting's macros open and close the
//! console around each line, two system calls inlined at every call site.

macro_rules! println {
    ($($arg:tt)*) => { $crate::console::line(format_args!($($arg)*)) };
}
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::console::error_line(format_args!($($arg)*)) };
}
pub(crate) use {eprintln, println};

use core::fmt::Arguments;

use semihosting::io::Write as _;

/// `line` and a newline to standard output.
#[inline(never)]
pub fn line(line: Arguments<'_>) {
    if let Ok(mut out) = semihosting::io::stdout() {
        let _ = out.write_fmt(line);
        let _ = out.write_all(b"\n");
    }
}

/// `line` and a newline to standard error.
#[inline(never)]
pub fn error_line(line: Arguments<'_>) {
    if let Ok(mut out) = semihosting::io::stderr() {
        let _ = out.write_fmt(line);
        let _ = out.write_all(b"\n");
    }
}
