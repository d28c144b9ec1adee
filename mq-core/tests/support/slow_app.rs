//! Slow applications for the simulations: in half the seeds the brokers
//! have a short ack deadline, and the applications ack one delivery in five
//! up to three deadlines late.

use std::time::Duration;

use mq_core::Instant;
use mq_core::client::DeliveryId;

use crate::rng::Rng;

/// The brokers' ack deadline for a seed: 20-100 ms in half the seeds.
pub fn ack_deadline(rng: &mut Rng) -> Option<Duration> {
    rng.chance(500_000)
        .then(|| Duration::from_millis(20 + rng.below(80)))
}

/// Acks an application has put off: (when, which).
#[derive(Default)]
pub struct Later(Vec<(Instant, DeliveryId)>);

impl Later {
    /// Whether the application puts off its ack of `id`, received at `now`
    /// under `deadline`: when it will ack, and whether that is past the
    /// deadline.
    pub fn put_off(
        &mut self,
        rng: &mut Rng,
        deadline: Option<Duration>,
        now: Instant,
        id: DeliveryId,
    ) -> Option<(Instant, bool)> {
        let deadline = deadline.filter(|_| rng.chance(200_000))?.as_micros() as u64;
        let delay = rng.below(3 * deadline);
        let at = now + Duration::from_micros(delay);
        self.0.push((at, id));
        Some((at, delay > deadline))
    }

    /// When the next put-off ack is due (the mesh's world steps often
    /// enough without asking).
    #[allow(dead_code)]
    pub fn next(&self) -> Option<Instant> {
        self.0.iter().map(|(at, _)| *at).min()
    }

    /// Takes out the acks due at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<DeliveryId> {
        let (due, rest) = self.0.iter().partition(|(at, _)| *at <= now);
        self.0 = rest;
        due.into_iter().map(|(_, id)| id).collect()
    }
}
