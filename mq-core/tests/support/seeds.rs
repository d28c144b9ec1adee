//! Running a simulation over many seeds, or one with a trace.
//!
//! Seeds are independent worlds, so they run on every core: each thread takes
//! the next seed not yet taken, and the results are handed on in seed order,
//! as if the seeds had run one after another.

use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// With `MQ_SIM_SEED=S`, runs seed `S` with a trace, prints what it
/// returned, and returns `None`. Otherwise runs seeds 0 to `MQ_SIM_SEEDS`
/// (default 100) without one, on `MQ_SIM_THREADS` threads (default: the
/// cores), hands each result to `each` in seed order, and returns how many
/// ran; a failing seed prints how to replay it (`test` names the test
/// target) and fails the test (the lowest failing seed, when several fail).
pub fn for_each_seed<T: Debug + Send>(
    test: &str,
    run: impl Fn(u64, bool) -> T + Sync,
    mut each: impl FnMut(T),
) -> Option<u64> {
    if let Ok(seed) = std::env::var("MQ_SIM_SEED") {
        let seed: u64 = seed.parse().expect("MQ_SIM_SEED is a number");
        println!("seed {seed}: {:?}", run(seed, true));
        return None;
    }
    let seeds: u64 = number("MQ_SIM_SEEDS").unwrap_or(100);
    let threads = number("MQ_SIM_THREADS")
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as u64)
        })
        .unwrap_or(1)
        .clamp(1, seeds.max(1));
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(u64, std::thread::Result<T>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                // After a failure no new seed starts: the lowest failing
                // seed is among those already taken.
                while !failed.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds {
                        break;
                    }
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run(seed, false)));
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    results.lock().unwrap().push((seed, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(seed, _)| *seed);
    for (seed, result) in results {
        match result {
            Ok(t) => each(t),
            Err(e) => {
                eprintln!(
                    "simulation seed {seed} failed; replay it with:\n  MQ_SIM_SEED={seed} cargo test -p mq-core --test {test} -- --nocapture"
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    Some(seeds)
}

/// The number in environment variable `var`, if it is set.
fn number(var: &str) -> Option<u64> {
    let value = std::env::var(var).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{var} is a number")),
    )
}
