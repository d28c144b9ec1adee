//! A bounded window of client calls in flight, issued in program order.
//!
//! A client call (`publish`) hands its command to the client's task on its first
//! poll and then waits for the answer. [`Window::push`] polls a call once right
//! away, so calls reach the connection in the order they were pushed (unlike
//! spawning a task per call), and keeps it until [`Window::next`] takes its
//! result. Results come back oldest first.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

type Call<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Calls in flight, oldest first, at most `limit` of them.
pub struct Window<'a, T> {
    calls: VecDeque<Call<'a, T>>,
    limit: usize,
}

impl<'a, T: Send + 'a> Window<'a, T> {
    /// An empty window for `limit` calls (at least one).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Window {
            calls: VecDeque::with_capacity(limit),
            limit,
        }
    }

    /// Whether [`push`](Self::push) must wait for [`next`](Self::next) first.
    pub fn is_full(&self) -> bool {
        self.calls.len() >= self.limit
    }

    /// Calls in flight.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Starts `call` (polls it once) and keeps it. The caller keeps the window
    /// within its limit (see [`is_full`](Self::is_full)).
    pub async fn push(&mut self, call: impl Future<Output = T> + Send + 'a) {
        let mut call: Call<'a, T> = Box::pin(call);
        let first = poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(value) => self.calls.push_back(Box::pin(std::future::ready(value))),
            Poll::Pending => self.calls.push_back(call),
        }
    }

    /// The result of the oldest call, once it has one; `None` when the window
    /// is empty.
    pub async fn next(&mut self) -> Option<T> {
        let value = self.calls.front_mut()?.await;
        self.calls.pop_front();
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn starts_calls_in_order_and_returns_oldest_first() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut window = Window::new(3);
        let waiting = {
            let log = Arc::clone(&log);
            async move {
                log.lock().unwrap().push("started 0");
                rx.await.unwrap();
                0
            }
        };
        window.push(waiting).await;
        for i in 1..3 {
            let log = Arc::clone(&log);
            window
                .push(async move {
                    log.lock()
                        .unwrap()
                        .push(if i == 1 { "started 1" } else { "started 2" });
                    i
                })
                .await;
        }
        assert!(window.is_full());
        assert_eq!(
            *log.lock().unwrap(),
            ["started 0", "started 1", "started 2"]
        );
        tx.send(()).unwrap();
        assert_eq!(window.next().await, Some(0));
        assert_eq!(window.next().await, Some(1));
        assert_eq!(window.next().await, Some(2));
        assert_eq!(window.len(), 0);
        assert_eq!(window.next().await, None);
    }
}
