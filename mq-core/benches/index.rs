//! How fast the subscription index finds the filters matching a topic.
//!
//! 10,000 filters (about 70% exact, 20% with `*`, 10% with `>`) over a device /
//! sensor / metric namespace, and 1,000 topics, some of which match nothing.
//! Throughput is topic lookups per second; the average number of matches per
//! topic is printed once so lookups can be turned into matches per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mq_core::topic::{Filter, SubscriptionIndex, Topic};

const FILTERS: usize = 10_000;
const TOPICS: usize = 1_000;
const DEVICES: u64 = 2_000;
const SENSORS: u64 = 8;
const METRICS: &[&str] = &["temp", "hum", "pressure", "co2"];

/// xorshift64: deterministic, good enough to spread the data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn metric(&mut self) -> &'static str {
        METRICS[self.below(METRICS.len() as u64) as usize]
    }
}

fn filters(rng: &mut XorShift) -> Vec<String> {
    (0..FILTERS)
        .map(|_| {
            let (d, s) = (rng.below(DEVICES), rng.below(SENSORS));
            match rng.below(100) {
                0..70 => format!("dev{d}.sensor{s}.{}", rng.metric()),
                70..77 => format!("dev{d}.*.{}", rng.metric()),
                77..84 => format!("dev{d}.sensor{s}.*"),
                84..90 => format!("*.sensor{s}.{}", rng.metric()),
                90..95 => format!("dev{d}.>"),
                _ => format!("dev{d}.sensor{s}.>"),
            }
        })
        .collect()
}

fn topics(rng: &mut XorShift) -> Vec<String> {
    (0..TOPICS)
        .map(|_| {
            let (d, s) = (rng.below(DEVICES), rng.below(SENSORS));
            match rng.below(10) {
                0..7 => format!("dev{d}.sensor{s}.{}", rng.metric()),
                7 => format!("dev{d}.sensor{s}.{}.raw", rng.metric()),
                8 => format!("dev{d}.status"),
                _ => format!("gateway{d}.uplink"),
            }
        })
        .collect()
}

fn match_10k_filters(c: &mut Criterion) {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut index = SubscriptionIndex::new();
    for (id, f) in filters(&mut rng).iter().enumerate() {
        index.insert(Filter::new(f).unwrap(), id as u32);
    }
    let topic_strings = topics(&mut rng);
    let topics: Vec<Topic<'_>> = topic_strings
        .iter()
        .map(|t| Topic::new(t).unwrap())
        .collect();

    let mut total = 0usize;
    for &t in &topics {
        index.for_each_match(t, |_| total += 1);
    }
    println!(
        "index: {} filters, {} topics, {:.2} matches per topic on average",
        index.len(),
        topics.len(),
        total as f64 / topics.len() as f64
    );

    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(topics.len() as u64));
    group.bench_function("match_10k_filters", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &t in &topics {
                index.for_each_match(black_box(t), |&id| sum = sum.wrapping_add(id));
            }
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group!(benches, match_10k_filters);
criterion_main!(benches);
