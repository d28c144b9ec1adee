//! A one-value channel whose sender can tell that the receiver gave up: how a
//! blocking caller waits for the driver's answer ([`oneshot`]), with or without
//! a timeout. The driver sees the sending half as a [`Reply`].

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use crate::driver::Reply;

/// Why a [`Answer::recv`] got no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    Timeout,
    Sender,
}

enum SlotState<T> {
    Waiting,
    Done(T),
    Taken,
    SenderGone,
    ReceiverGone,
}

/// A one-value channel whose sender can tell that the receiver gave up.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

/// The sending half of [`oneshot`]: the driver's [`Reply`].
pub(super) struct Answerer<T>(Arc<Slot<T>>);

/// The receiving half of [`oneshot`].
pub(super) struct Answer<T>(Arc<Slot<T>>);

pub(super) fn oneshot<T>() -> (Answerer<T>, Answer<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState::Waiting),
        ready: Condvar::new(),
    });
    (Answerer(Arc::clone(&slot)), Answer(slot))
}

impl<T> Slot<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Send> Reply<T> for Answerer<T> {
    fn send(self: Box<Self>, value: T) {
        let refused = {
            let mut state = self.0.lock();
            if matches!(*state, SlotState::Waiting) {
                *state = SlotState::Done(value);
                None
            } else {
                Some(value)
            }
        };
        self.0.ready.notify_all();
        // Dropped outside the lock: a message's drop talks to the driver.
        drop(refused);
    }

    fn is_closed(&self) -> bool {
        matches!(*self.0.lock(), SlotState::ReceiverGone)
    }
}

impl<T> Drop for Answerer<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if matches!(*state, SlotState::Waiting) {
            *state = SlotState::SenderGone;
            drop(state);
            self.0.ready.notify_all();
        }
    }
}

impl<T> Answer<T> {
    /// Blocks for the value, up to `timeout` if given.
    pub(super) fn recv(&self, timeout: Option<Duration>) -> Result<T, Gone> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        let mut state = self.0.lock();
        loop {
            match std::mem::replace(&mut *state, SlotState::Taken) {
                SlotState::Done(value) => return Ok(value),
                SlotState::Waiting => *state = SlotState::Waiting,
                other => {
                    *state = other;
                    return Err(Gone::Sender);
                }
            }
            state = match deadline {
                None => self
                    .0
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(StdInstant::now());
                    if left.is_zero() {
                        return Err(Gone::Timeout);
                    }
                    self.0
                        .ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        let left = {
            let mut state = self.0.lock();
            std::mem::replace(&mut *state, SlotState::ReceiverGone)
        };
        // A value nobody took (a message) is dropped outside the lock.
        drop(left);
    }
}
