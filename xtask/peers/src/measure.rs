//! What every run measures, the same way for every system: payloads carry their
//! send time (nanoseconds from the run's base instant, little-endian `u64` in
//! the first 8 bytes), receivers record each arrival into a shared [`Tally`]
//! (count, time of the last arrival, latency histogram), and the run ends when
//! every expected message arrived or arrivals stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cpu::Cpu;
use crate::histogram::Histogram;

/// Arrivals stop counting as "still coming" after this long without one.
const IDLE: Duration = Duration::from_secs(2);

/// Arrivals of one run, shared by its receivers.
pub struct Tally {
    base: Instant,
    /// When publishing began, in nanoseconds from `base`.
    start: AtomicU64,
    delivered: AtomicU64,
    /// The last arrival, in nanoseconds from `base`.
    last: AtomicU64,
    latency: Mutex<Histogram>,
}

impl Tally {
    pub fn new() -> Arc<Tally> {
        Arc::new(Tally {
            base: Instant::now(),
            start: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            last: AtomicU64::new(0),
            latency: Mutex::new(Histogram::default()),
        })
    }

    /// Nanoseconds since the base instant.
    pub fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Marks the start of publishing: rates count from here (after any warm-up).
    pub fn begin(&self) {
        self.start.store(self.now(), Ordering::Relaxed);
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// The last arrival, in nanoseconds from the base instant.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// A recorder for one receiver; its latencies join the tally when it drops.
    pub fn recorder(self: &Arc<Self>) -> Recorder {
        Recorder {
            tally: Arc::clone(self),
            latency: Histogram::default(),
        }
    }

    /// A payload stamper for one publisher.
    pub fn stamp(self: &Arc<Self>, size: usize) -> Stamp {
        Stamp {
            tally: Arc::clone(self),
            buf: vec![b'm'; size.max(16)],
        }
    }

    /// Waits until `expected` arrived, arrivals stopped for [`IDLE`], or `limit`
    /// passed since this call.
    pub async fn settle(&self, expected: u64, limit: Duration) {
        let give_up = Instant::now() + limit;
        let mut seen = self.delivered();
        let mut progress = Instant::now();
        while seen < expected {
            let now = Instant::now();
            if now >= give_up || now.duration_since(progress) >= IDLE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            let n = self.delivered();
            if n != seen {
                seen = n;
                progress = Instant::now();
            }
        }
    }

    /// [`settle`](Self::settle) for a thread of its own (blocking).
    pub fn settle_blocking(&self, expected: u64, limit: Duration) {
        let give_up = Instant::now() + limit;
        let mut seen = self.delivered();
        let mut progress = Instant::now();
        while seen < expected {
            let now = Instant::now();
            if now >= give_up || now.duration_since(progress) >= IDLE {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            let n = self.delivered();
            if n != seen {
                seen = n;
                progress = Instant::now();
            }
        }
    }

    /// What the receivers measured (call after every [`Recorder`] dropped).
    pub fn measured(&self, expected: u64, size: usize) -> Measured {
        let start = self.start.load(Ordering::Relaxed);
        let last = self.last.load(Ordering::Relaxed);
        Measured {
            expected,
            delivered: self.delivered(),
            secs: last.saturating_sub(start) as f64 / 1e9,
            size,
            latency: self.latency.lock().expect("latency lock").clone(),
            note: None,
            cpu: Cpu::default(),
        }
    }
}

/// One receiver's view of a [`Tally`].
pub struct Recorder {
    tally: Arc<Tally>,
    latency: Histogram,
}

impl Recorder {
    /// Counts `payload` and records its latency. Payloads shorter than the
    /// stamp (probes that check a path is open) are not counted.
    pub fn record(&mut self, payload: &[u8]) {
        let Some(sent) = payload.get(..8) else { return };
        let sent = u64::from_le_bytes(sent.try_into().expect("8 bytes"));
        let now = self.tally.now();
        self.latency.record(now.saturating_sub(sent));
        self.tally.delivered.fetch_add(1, Ordering::Relaxed);
        self.tally.last.fetch_max(now, Ordering::Relaxed);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Ok(mut all) = self.tally.latency.lock() {
            all.merge(&self.latency);
        }
    }
}

/// Stamps a publisher's payloads with their send time.
pub struct Stamp {
    tally: Arc<Tally>,
    buf: Vec<u8>,
}

impl Stamp {
    /// The next payload, stamped now.
    pub fn next(&mut self) -> &[u8] {
        let now = self.tally.now();
        self.buf[..8].copy_from_slice(&now.to_le_bytes());
        &self.buf
    }

    /// The next payload, stamped now, with sequence number `seq` in bytes
    /// 8..16 (little-endian `u64`, see [`Seen`](crate::seen::Seen)).
    pub fn next_seq(&mut self, seq: u64) -> &[u8] {
        self.buf[8..16].copy_from_slice(&seq.to_le_bytes());
        self.next()
    }

    /// The next payload as `Bytes`.
    pub fn bytes(&mut self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(self.next())
    }
}

/// Round trips or acknowledgements timed by the sender itself.
pub struct Timer {
    base: Instant,
    last: Option<Instant>,
    count: u64,
    latency: Histogram,
}

impl Timer {
    pub fn new() -> Timer {
        Timer {
            base: Instant::now(),
            last: None,
            count: 0,
            latency: Histogram::default(),
        }
    }

    /// Nanoseconds since the timer was made.
    pub fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// One answer arrived for a request sent at `sent` (from [`now`](Self::now)).
    pub fn answered(&mut self, sent: u64) {
        let now = Instant::now();
        let at = now.duration_since(self.base).as_nanos() as u64;
        self.latency.record(at.saturating_sub(sent));
        self.count += 1;
        self.last = Some(now);
    }

    pub fn measured(self, expected: u64, size: usize) -> Measured {
        Measured {
            expected,
            delivered: self.count,
            secs: self
                .last
                .map_or(0.0, |t| t.duration_since(self.base).as_secs_f64()),
            size,
            latency: self.latency,
            note: None,
            cpu: Cpu::default(),
        }
    }
}

/// The result of one run.
pub struct Measured {
    /// Messages (deliveries, acknowledgements, round trips) that should arrive.
    pub expected: u64,
    /// Those that did.
    pub delivered: u64,
    /// From the start of publishing to the last arrival.
    pub secs: f64,
    /// Payload bytes per message.
    pub size: usize,
    pub latency: Histogram,
    /// Anything the reader must know to read the row right.
    pub note: Option<String>,
    /// CPU seconds of the broker and the clients over the whole run.
    pub cpu: Cpu,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.delivered as f64 / self.secs
        } else {
            0.0
        }
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.rate() * self.size as f64 / 1e6
    }

    /// The broker's CPU microseconds per delivered message.
    pub fn broker_us_per_msg(&self) -> Option<f64> {
        let cpu = self.cpu.broker?;
        (self.delivered > 0).then(|| cpu * 1e6 / self.delivered as f64)
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Measured {
        self.note = Some(note.into());
        self
    }
}
