//! Crate-local logging macros: the core never names a logger directly.
//!
//! With the `defmt` feature they forward to `defmt`, with `log` to the `log` facade,
//! and with neither they compile to nothing (arguments are still type-checked).

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are mutually exclusive");

#[allow(unused_macros)]
macro_rules! mq_log {
    ($level:ident, $($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        { defmt::$level!($($arg)*); }
        #[cfg(feature = "log")]
        { log::$level!($($arg)*); }
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        { if false { let _ = core::format_args!($($arg)*); } }
    }};
}

#[allow(unused_macros)]
macro_rules! trace { ($($arg:tt)*) => { mq_log!(trace, $($arg)*) }; }
#[allow(unused_macros)]
macro_rules! debug { ($($arg:tt)*) => { mq_log!(debug, $($arg)*) }; }
#[allow(unused_macros)]
macro_rules! warn { ($($arg:tt)*) => { mq_log!(warn, $($arg)*) }; }
