//! Room for publishes on their way from the application to the driver: what
//! lets a publish return without a round trip to the client's task.
//!
//! Every publish reserves its size here before it is sent to the driver,
//! through the [`Reserved`] it carries, and gives it back once the driver has
//! handed it to the session: at the end of that pass of the driver, together
//! with the other publishes the pass handed over (one wake-up of the waiting
//! publishers for all of them); a publish that failed, or whose caller gave
//! up, gives its share back at once. While there is room, `publish` of a
//! QoS 0 message (and the enqueueing of a QoS 1 one) costs a channel send and
//! nothing else: no answer to wait for, no wake-up of the caller. Once the
//! room is used up (the session's outbox is full and publishers queue behind
//! it), publishers wait here, asynchronously or blocking, until the driver has
//! taken some; so the bytes between the application and the session stay
//! bounded by the room's capacity.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

/// Why [`Room::take_blocking`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The driver stopped: nothing will free room any more.
    Closed,
    /// The deadline passed.
    Timeout,
}

/// Bytes publishers may have on their way to the driver.
pub(crate) struct Room {
    capacity: usize,
    free: AtomicUsize,
    /// Publishers waiting for room; releases wake them only when there are any.
    waiters: AtomicUsize,
    closed: AtomicBool,
    /// Wakes async waiters.
    notify: Notify,
    /// Wakes blocking waiters (the lock orders a release against a waiter going
    /// to sleep).
    lock: Mutex<()>,
    cond: Condvar,
    /// Wake-ups of the waiters so far.
    #[cfg(test)]
    wakes: AtomicUsize,
}

/// A share of the room (one publish's, or those of several taken into one
/// with [`Reserved::absorb`]), given back when it is dropped.
pub(crate) struct Reserved {
    room: Arc<Room>,
    bytes: usize,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.room.release(self.bytes);
        }
    }
}

impl Reserved {
    /// Takes `other`'s share into this one: the two are given back together,
    /// with one wake-up of the waiting publishers. The driver gathers the
    /// shares of the publishes it hands to the session in one pass this way:
    /// given back one by one, each woke a publisher waiting for room to take
    /// one message's worth and wait again (a wake-up, often a system call, per
    /// message).
    pub(crate) fn absorb(&mut self, mut other: Reserved) {
        debug_assert!(Arc::ptr_eq(&self.room, &other.room), "one room");
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

/// Counts a waiter for as long as it waits (a cancelled future included).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, SeqCst);
        Waiting(waiters)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Room {
    pub(crate) fn new(capacity: usize) -> Arc<Room> {
        Arc::new(Room {
            capacity,
            free: AtomicUsize::new(capacity),
            waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            notify: Notify::new(),
            lock: Mutex::new(()),
            cond: Condvar::new(),
            #[cfg(test)]
            wakes: AtomicUsize::new(0),
        })
    }

    /// The bytes publishers may have on their way at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// What a message of `bytes` reserves: at most the whole room, so that a
    /// message larger than it still goes (alone).
    fn share(&self, bytes: usize) -> usize {
        bytes.clamp(1, self.capacity)
    }

    /// Reserves `bytes` if there is room now.
    pub(crate) fn try_take(self: &Arc<Self>, bytes: usize) -> Option<Reserved> {
        let bytes = self.share(bytes);
        let mut free = self.free.load(SeqCst);
        loop {
            if free < bytes {
                return None;
            }
            match self
                .free
                .compare_exchange_weak(free, free - bytes, SeqCst, SeqCst)
            {
                Ok(_) => {
                    return Some(Reserved {
                        room: Arc::clone(self),
                        bytes,
                    });
                }
                Err(now) => free = now,
            }
        }
    }

    /// Reserves `bytes`, waiting for room; `None` once the driver stopped.
    pub(crate) async fn take(self: &Arc<Self>, bytes: usize) -> Option<Reserved> {
        if let Some(r) = self.try_take(bytes) {
            return Some(r);
        }
        let _waiting = Waiting::new(&self.waiters);
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if let Some(r) = self.try_take(bytes) {
                return Some(r);
            }
            if self.closed.load(SeqCst) {
                return None;
            }
            notified.await;
        }
    }

    /// Reserves `bytes`, blocking the thread until there is room or `deadline`.
    pub(crate) fn take_blocking(
        self: &Arc<Self>,
        bytes: usize,
        deadline: Option<Instant>,
    ) -> Result<Reserved, NoRoom> {
        if let Some(r) = self.try_take(bytes) {
            return Ok(r);
        }
        let _waiting = Waiting::new(&self.waiters);
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = self.try_take(bytes) {
                return Ok(r);
            }
            if self.closed.load(SeqCst) {
                return Err(NoRoom::Closed);
            }
            guard = match deadline {
                None => self
                    .cond
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(NoRoom::Timeout);
                    }
                    self.cond
                        .wait_timeout(guard, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    fn release(&self, bytes: usize) {
        self.free.fetch_add(bytes, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            self.wake();
        }
    }

    /// The driver stopped: waiters give up, and so does every later `take`.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.wake();
    }

    fn wake(&self) {
        #[cfg(test)]
        self.wakes.fetch_add(1, SeqCst);
        self.notify.notify_waiters();
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.cond.notify_all();
    }

    /// Bytes reserved now (publishes between the application and the session).
    pub(crate) fn used(&self) -> usize {
        self.capacity - self.free.load(SeqCst)
    }

    /// Publishers waiting for room now, and the wake-ups they had so far.
    #[cfg(test)]
    pub(crate) fn waiters_and_wakes(&self) -> (usize, usize) {
        (self.waiters.load(SeqCst), self.wakes.load(SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reservations_are_bounded_and_given_back_when_dropped() {
        let room = Room::new(100);
        let a = room.try_take(60).expect("room for 60");
        assert!(room.try_take(50).is_none(), "only 40 left");
        let b = room.try_take(40).expect("room for 40");
        assert_eq!(room.used(), 100);
        drop(a);
        assert_eq!(room.used(), 40);
        // A message larger than the whole room takes all of it, alone.
        assert!(room.try_take(1000).is_none());
        drop(b);
        let all = room.try_take(1000).expect("a large message goes alone");
        assert_eq!(room.used(), 100);
        drop(all);
        assert_eq!(room.used(), 0);
    }

    #[test]
    fn a_blocked_thread_wakes_when_room_is_released() {
        let room = Room::new(10);
        let held = room.try_take(10).unwrap();
        let r = Arc::clone(&room);
        let waiter = std::thread::spawn(move || r.take_blocking(5, None).map(|_| ()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "no room yet");
        drop(held);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn blocking_waits_end_at_the_deadline_or_when_closed() {
        let room = Room::new(10);
        let _held = room.try_take(10).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            room.take_blocking(1, Some(soon)).err(),
            Some(NoRoom::Timeout)
        );
        let r = Arc::clone(&room);
        let waiter = std::thread::spawn(move || r.take_blocking(1, None).err());
        std::thread::sleep(Duration::from_millis(20));
        room.close();
        assert_eq!(waiter.join().unwrap(), Some(NoRoom::Closed));
    }

    #[tokio::test]
    async fn an_async_waiter_wakes_when_room_is_released_or_closed() {
        let room = Room::new(10);
        let held = room.try_take(10).unwrap();
        let r = Arc::clone(&room);
        let waiter = tokio::spawn(async move { r.take(3).await.is_some() });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.unwrap());
        let _held = room.try_take(10).unwrap();
        let r = Arc::clone(&room);
        let waiter = tokio::spawn(async move { r.take(3).await.is_some() });
        tokio::task::yield_now().await;
        room.close();
        assert!(!waiter.await.unwrap(), "a closed room refuses");
    }
}
