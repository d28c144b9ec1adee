//! Crate-local logging macros, so the drivers never name a logger: `defmt` with
//! the `defmt` feature, the `log` facade with `log`, nothing otherwise (the
//! arguments are still type-checked).

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are mutually exclusive");

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
macro_rules! debug { ($($arg:tt)*) => { mq_log!(debug, $($arg)*) }; }
#[allow(unused_macros)]
macro_rules! warn { ($($arg:tt)*) => { mq_log!(warn, $($arg)*) }; }
