//! The logging macros of mq-core and of the drivers built on it (mq-embedded):
//! one set, so no crate names a logger directly.
//!
//! With mq-core's `defmt` feature they forward to `defmt`, with `log` to the `log`
//! facade, and with neither they compile to nothing (the arguments are still
//! type-checked). The logger is chosen here, by mq-core's features, whichever
//! crate expands the macro: mq-embedded's `defmt` and `log` features turn on
//! mq-core's. They are exported hidden, as `__mq_trace!`, `__mq_debug!` and
//! `__mq_warn!` (mq-embedded imports them under the short names); inside
//! mq-core they are `trace!`, `debug!` and `warn!`.

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are mutually exclusive");

#[cfg(feature = "defmt")]
#[doc(hidden)]
#[macro_export]
macro_rules! __mq_log {
    ($level:ident, $($arg:tt)*) => {{
        // defmt's expansion names `defmt::...`: this finds it from any crate.
        use $crate::__private::defmt;
        defmt::$level!($($arg)*);
    }};
}

#[cfg(feature = "log")]
#[doc(hidden)]
#[macro_export]
macro_rules! __mq_log {
    ($level:ident, $($arg:tt)*) => {{
        $crate::__private::log::$level!($($arg)*);
    }};
}

#[cfg(not(any(feature = "defmt", feature = "log")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __mq_log {
    ($level:ident, $($arg:tt)*) => {{
        if false {
            let _ = ::core::format_args!($($arg)*);
        }
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mq_trace { ($($arg:tt)*) => { $crate::__mq_log!(trace, $($arg)*) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __mq_debug { ($($arg:tt)*) => { $crate::__mq_log!(debug, $($arg)*) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __mq_warn { ($($arg:tt)*) => { $crate::__mq_log!(warn, $($arg)*) }; }

// The short names inside mq-core.
#[allow(unused_macros)]
macro_rules! trace { ($($arg:tt)*) => { $crate::__mq_trace!($($arg)*) }; }
#[allow(unused_macros)]
macro_rules! debug { ($($arg:tt)*) => { $crate::__mq_debug!($($arg)*) }; }
#[allow(unused_macros)]
macro_rules! warn { ($($arg:tt)*) => { $crate::__mq_warn!($($arg)*) }; }
