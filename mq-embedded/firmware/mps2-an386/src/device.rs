//! What the two mq applications (`app_mq.rs` over TCP, `app_serial.rs`
//! over a serial line) keep alike: the telemetry side's counters and the
//! device's topics.

/// A topic the applications build (`dev.<id>.<suffix>`).
pub(crate) type Topic = heapless::String<48>;

/// The telemetry side: what is queued, what the broker has stored.
pub(crate) struct Telemetry {
    pub topic: Topic,
    pub total: u32,
    /// The next message to queue (from 1).
    pub next: u32,
    /// When it is due (board microseconds).
    pub next_at: u64,
    pub interval: u64,
    pub size: u16,
    pub marker: u32,
    /// The outbox was full at the last try: wait for an acknowledgement.
    pub blocked: bool,
    /// Acknowledged by the broker, and of those, already stored before (a
    /// resend the broker recognised).
    pub stored: u32,
    pub duplicates: u32,
    pub first_queued: Option<u64>,
    pub all_stored: Option<u64>,
}

impl Telemetry {
    /// Nothing queued or due; all zeros, as the device's static starts.
    pub(crate) const IDLE: Telemetry = Telemetry {
        topic: Topic::new(),
        total: 0,
        next: 0,
        next_at: 0,
        interval: 0,
        size: 0,
        marker: 0,
        blocked: false,
        stored: 0,
        duplicates: 0,
        first_queued: None,
        all_stored: None,
    };
}

/// `dev.<id>.<suffix>` into `topic`. Pieces pushed rather than `write!`:
/// formatting into the string would link its `fmt::Write` (mq's share of
/// the flash, for two topics). Out of line: inlined at its two callers it
/// was 92 bytes more.
#[inline(never)]
pub(crate) fn device_topic(topic: &mut Topic, id: &str, suffix: &str) {
    // 4 + 32 + 10 bytes at most: it fits.
    for piece in ["dev.", id, ".", suffix] {
        let _ = topic.push_str(piece);
    }
}

/// The board's clock, in microseconds: one out-of-line reading for the
/// applications' several (each a critical section, the counter's extension
/// and ticks to microseconds, inlined where it was made).
#[inline(never)]
pub(crate) fn now_micros() -> u64 {
    firmware::clock::now_micros()
}
