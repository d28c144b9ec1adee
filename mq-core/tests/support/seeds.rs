//! Running a simulation over many seeds, or one with a trace.

use std::fmt::Debug;
use std::panic::RefUnwindSafe;

/// With `MQ_SIM_SEED=S`, runs seed `S` with a trace, prints what it
/// returned, and returns `None`. Otherwise runs seeds 0 to `MQ_SIM_SEEDS`
/// (default 100) without one, hands each result to `each`, and returns how
/// many ran; a failing seed prints how to replay it (`test` names the
/// test target) and fails the test.
pub fn for_each_seed<T: Debug>(
    test: &str,
    run: impl Fn(u64, bool) -> T + RefUnwindSafe,
    mut each: impl FnMut(T),
) -> Option<u64> {
    if let Ok(seed) = std::env::var("MQ_SIM_SEED") {
        let seed: u64 = seed.parse().expect("MQ_SIM_SEED is a number");
        println!("seed {seed}: {:?}", run(seed, true));
        return None;
    }
    let seeds: u64 = std::env::var("MQ_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    for seed in 0..seeds {
        match std::panic::catch_unwind(|| run(seed, false)) {
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
