//! The result code of every call, the error text each handle keeps, and the
//! guard around every entry point: a panic becomes `MQ_ERR_PANIC`, never an
//! unwind into C.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

use ::mq_client::blocking::Error;

/// What a call did. `MQ_OK` is 0; every other value is a failure whose text
/// the handle's `*_error` function returns.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum mq_result {
    /// Success.
    MQ_OK = 0,
    /// A pointer argument that must not be NULL was NULL.
    MQ_ERR_NULL_ARGUMENT = 1,
    /// An argument is not valid (not UTF-8, bad topic or filter, unknown enum
    /// value, already connected, already settled, ...); the text says which.
    MQ_ERR_INVALID = 2,
    /// Connecting failed: the address does not resolve, nothing listens, or
    /// the connection closed before the broker's welcome.
    MQ_ERR_IO = 3,
    /// The broker refused the connection (wrong token, unsupported version,
    /// shutting down) or did not welcome it within the connect timeout.
    MQ_ERR_REFUSED = 4,
    /// The broker refused this publish or subscription (not authorized, queue
    /// full, storage full, ...).
    MQ_ERR_REJECTED = 5,
    /// The client is closed or not connected, or the subscription ended.
    MQ_ERR_CLOSED = 6,
    /// Nothing arrived within the time given.
    MQ_ERR_TIMEOUT = 7,
    /// The message can never be sent: larger than the outbox, or its topic and
    /// properties alone exceed the broker's maximum frame.
    MQ_ERR_TOO_LARGE = 8,
    /// The client holds as many subscriptions as it can.
    MQ_ERR_TOO_MANY_SUBSCRIPTIONS = 9,
    /// The caller's buffer is too small; the required length was reported and
    /// the buffer left untouched.
    MQ_ERR_BUFFER_TOO_SMALL = 10,
    /// No such item (header index or name).
    MQ_ERR_NOT_FOUND = 11,
    /// A bug in mq: a panic was caught at the boundary. The handle is still
    /// safe to free.
    MQ_ERR_PANIC = 12,
    /// A failure this version of the ABI has no code for; the text says what.
    MQ_ERR_OTHER = 13,
}

use mq_result::*;

impl mq_result {
    /// The name of the code, as in the header.
    pub const fn name(self) -> &'static CStr {
        match self {
            MQ_OK => c"MQ_OK",
            MQ_ERR_NULL_ARGUMENT => c"MQ_ERR_NULL_ARGUMENT",
            MQ_ERR_INVALID => c"MQ_ERR_INVALID",
            MQ_ERR_IO => c"MQ_ERR_IO",
            MQ_ERR_REFUSED => c"MQ_ERR_REFUSED",
            MQ_ERR_REJECTED => c"MQ_ERR_REJECTED",
            MQ_ERR_CLOSED => c"MQ_ERR_CLOSED",
            MQ_ERR_TIMEOUT => c"MQ_ERR_TIMEOUT",
            MQ_ERR_TOO_LARGE => c"MQ_ERR_TOO_LARGE",
            MQ_ERR_TOO_MANY_SUBSCRIPTIONS => c"MQ_ERR_TOO_MANY_SUBSCRIPTIONS",
            MQ_ERR_BUFFER_TOO_SMALL => c"MQ_ERR_BUFFER_TOO_SMALL",
            MQ_ERR_NOT_FOUND => c"MQ_ERR_NOT_FOUND",
            MQ_ERR_PANIC => c"MQ_ERR_PANIC",
            MQ_ERR_OTHER => c"MQ_ERR_OTHER",
        }
    }
}

/// The static name of a result code (`"MQ_ERR_TIMEOUT"`), or `"MQ_UNKNOWN"`
/// for a value that is not one. Never NULL; the string lives forever. One of
/// the two kinds of function that return no `mq_result` (the other: `_free`).
#[unsafe(no_mangle)]
pub extern "C" fn mq_result_name(code: i32) -> *const c_char {
    let name = ALL
        .iter()
        .find(|r| **r as i32 == code)
        .map_or(c"MQ_UNKNOWN", |r| r.name());
    name.as_ptr()
}

/// Every code, to map an integer from C back without transmuting.
const ALL: [mq_result; 14] = [
    MQ_OK,
    MQ_ERR_NULL_ARGUMENT,
    MQ_ERR_INVALID,
    MQ_ERR_IO,
    MQ_ERR_REFUSED,
    MQ_ERR_REJECTED,
    MQ_ERR_CLOSED,
    MQ_ERR_TIMEOUT,
    MQ_ERR_TOO_LARGE,
    MQ_ERR_TOO_MANY_SUBSCRIPTIONS,
    MQ_ERR_BUFFER_TOO_SMALL,
    MQ_ERR_NOT_FOUND,
    MQ_ERR_PANIC,
    MQ_ERR_OTHER,
];

/// A failed call: its code and the text the handle keeps.
#[derive(Debug)]
pub(crate) struct Fail {
    pub code: mq_result,
    pub text: String,
}

impl Fail {
    pub fn new(code: mq_result, text: impl Into<String>) -> Fail {
        Fail {
            code,
            text: text.into(),
        }
    }

    pub fn null(what: &str) -> Fail {
        Fail::new(MQ_ERR_NULL_ARGUMENT, format!("{what} is NULL"))
    }

    pub fn invalid(text: impl Into<String>) -> Fail {
        Fail::new(MQ_ERR_INVALID, text)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        let code = match &e {
            Error::Io(_) => MQ_ERR_IO,
            Error::Refused(_) => MQ_ERR_REFUSED,
            Error::Rejected(_) => MQ_ERR_REJECTED,
            Error::Closed(_) => MQ_ERR_CLOSED,
            Error::Timeout => MQ_ERR_TIMEOUT,
            Error::Invalid(_) | Error::Tls(_) => MQ_ERR_INVALID,
            Error::TooLarge => MQ_ERR_TOO_LARGE,
            Error::TooManySubscriptions => MQ_ERR_TOO_MANY_SUBSCRIPTIONS,
            _ => MQ_ERR_OTHER,
        };
        Fail::new(code, e.to_string())
    }
}

/// The text of a handle's last failure.
#[derive(Debug, Default)]
pub(crate) struct LastError(Mutex<String>);

impl LastError {
    /// Runs one entry point's body: a failure (or a caught panic) is recorded
    /// here and its code returned.
    pub fn run(&self, body: impl FnOnce() -> Result<(), Fail>) -> mq_result {
        match guard(body) {
            Ok(()) => MQ_OK,
            Err(fail) => {
                self.set(&fail.text);
                fail.code
            }
        }
    }

    fn set(&self, text: &str) {
        // A C string cannot hold NUL.
        let text = text.replace('\0', "\u{fffd}");
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = text;
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A handle that keeps the text of its last failure.
pub(crate) trait KeepsError {
    fn last_error(&self) -> &LastError;
}

/// The body of every `mq_*_error` function: copies the handle's text into the
/// caller's buffer (see [`copy_text`]). Reading the text never changes it.
///
/// # Safety
/// `handle` must be NULL or a live handle; the rest as for [`copy_text`].
pub(crate) unsafe fn error_of<T: KeepsError>(
    handle: *const T,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mq_result {
    match unsafe { handle.as_ref() } {
        Some(h) => run_bare(|| unsafe { copy_text(&h.last_error().text(), buf, cap, len) }),
        None => MQ_ERR_NULL_ARGUMENT,
    }
}

/// Runs the body of an entry point on the handle behind a pointer: a failure
/// (or a caught panic) is recorded in the handle and its code returned;
/// `MQ_ERR_NULL_ARGUMENT` when there is no handle.
pub(crate) fn on<T: KeepsError>(
    handle: Option<&T>,
    body: impl FnOnce(&T) -> Result<(), Fail>,
) -> mq_result {
    match handle {
        Some(h) => h.last_error().run(|| body(h)),
        None => MQ_ERR_NULL_ARGUMENT,
    }
}

/// Runs `body`, turning a panic into `MQ_ERR_PANIC`.
pub(crate) fn guard<T>(body: impl FnOnce() -> Result<T, Fail>) -> Result<T, Fail> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Fail::new(
            MQ_ERR_PANIC,
            format!("internal error (a bug in mq): panic: {what}"),
        ))
    })
}

/// Runs an entry point that has no handle to keep error text in (constructors
/// and option initializers): only the code reaches the caller.
pub(crate) fn run_bare(body: impl FnOnce() -> Result<(), Fail>) -> mq_result {
    guard(body).err().map_or(MQ_OK, |f| f.code)
}

/// Writes `text` and a NUL into `buf` of `cap` bytes, and its length (without
/// the NUL) into `*len` when `len` is not NULL. When `cap` is too small the
/// buffer is left untouched and `MQ_ERR_BUFFER_TOO_SMALL` returned: call again
/// with `*len + 1` bytes. `buf` may be NULL only when `cap` is 0.
///
/// # Safety
/// `buf` must be NULL or valid for `cap` bytes of writes; `len` NULL or valid
/// for one write.
pub(crate) unsafe fn copy_text(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> Result<(), Fail> {
    if !len.is_null() {
        unsafe { len.write(text.len()) };
    }
    if cap <= text.len() {
        return Err(Fail::new(
            MQ_ERR_BUFFER_TOO_SMALL,
            format!("the text needs {} bytes", text.len() + 1),
        ));
    }
    if buf.is_null() {
        return Err(Fail::null("buf"));
    }
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
    Ok(())
}

/// The handle behind `ptr`, or `None` when it is NULL.
///
/// # Safety
/// `ptr` must be NULL or point to a live `T` made by this library.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T) -> Option<&'a T> {
    unsafe { ptr.as_ref() }
}

/// A required C string argument as UTF-8.
///
/// # Safety
/// `ptr` must be NULL or a NUL-terminated string.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Fail> {
    unsafe { opt_str_arg(ptr, what) }?.ok_or_else(|| Fail::null(what))
}

/// An optional C string argument (NULL: `None`) as UTF-8.
///
/// # Safety
/// `ptr` must be NULL or a NUL-terminated string.
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Fail> {
    if ptr.is_null() {
        return Ok(None);
    }
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map(Some)
        .map_err(|_| Fail::invalid(format!("{what} is not valid UTF-8")))
}

/// A byte slice from a pointer and a length; NULL is fine for length 0.
///
/// # Safety
/// `ptr` must be valid for `len` bytes of reads when `len` > 0.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Fail> {
    match (ptr.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(Fail::null(what)),
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// Stores `value` through a required out-pointer.
///
/// # Safety
/// `out` must be NULL or valid for one write.
pub(crate) unsafe fn put<T>(out: *mut T, value: T, what: &str) -> Result<(), Fail> {
    if out.is_null() {
        return Err(Fail::null(what));
    }
    unsafe { out.write(value) };
    Ok(())
}

/// Checks that a required out-pointer is not NULL before any work is done.
pub(crate) fn need<T>(out: *mut T, what: &str) -> Result<(), Fail> {
    if out.is_null() {
        Err(Fail::null(what))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_mq_err_panic_with_its_text() {
        let slot = LastError::default();
        let code = slot.run(|| panic!("boom"));
        assert_eq!(code, MQ_ERR_PANIC);
        assert_eq!(slot.text(), "internal error (a bug in mq): panic: boom");
        assert_eq!(slot.run(|| Ok(())), MQ_OK);
        assert_eq!(slot.text(), "internal error (a bug in mq): panic: boom");
    }

    #[test]
    fn every_code_has_its_name() {
        for code in ALL {
            let name = unsafe { CStr::from_ptr(mq_result_name(code as i32)) };
            assert_eq!(name, code.name());
            assert!(name.to_str().unwrap().starts_with("MQ_"));
        }
        let unknown = unsafe { CStr::from_ptr(mq_result_name(ALL.len() as i32)) };
        assert_eq!(unknown, c"MQ_UNKNOWN");
    }

    #[test]
    fn text_with_nul_stays_a_c_string() {
        let slot = LastError::default();
        slot.set("a\0b");
        let mut buf = [0x55 as c_char; 16];
        let mut len = 0;
        let code = unsafe { error_of_slot(&slot, buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(code, MQ_OK);
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(text, "a\u{fffd}b");
        assert_eq!(len, text.len());
    }

    unsafe fn error_of_slot(
        slot: &LastError,
        buf: *mut c_char,
        cap: usize,
        len: *mut usize,
    ) -> mq_result {
        run_bare(|| unsafe { copy_text(&slot.text(), buf, cap, len) })
    }

    #[test]
    fn client_errors_map_to_their_codes() {
        use mq_core::Reason;
        let cases = [
            (Error::Timeout, MQ_ERR_TIMEOUT),
            (Error::Refused(Reason::BadToken), MQ_ERR_REFUSED),
            (Error::Rejected(Reason::NotAuthorized), MQ_ERR_REJECTED),
            (Error::Closed(Reason::Normal), MQ_ERR_CLOSED),
            (Error::Invalid("x"), MQ_ERR_INVALID),
            (Error::TooLarge, MQ_ERR_TOO_LARGE),
            (Error::TooManySubscriptions, MQ_ERR_TOO_MANY_SUBSCRIPTIONS),
            (
                Error::Tls(::mq_client::tls::TlsError::new("no CA")),
                MQ_ERR_INVALID,
            ),
            (
                Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
                MQ_ERR_IO,
            ),
        ];
        for (error, code) in cases {
            let text = error.to_string();
            let fail = Fail::from(error);
            assert_eq!((fail.code, fail.text), (code, text));
        }
    }
}
