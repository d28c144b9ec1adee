//! liner's seed benchmark (`bench_pair_sendto_*`): cycles of messages sent in
//! a loop, each timed from its first send to its last arrival. The rate is
//! over the cycles' own time (not the pauses between them).

use crate::measure::Measured;

/// `m` with its time the sum of `cycles_ns` and a note on their spread.
pub fn measured(mut m: Measured, cycles_ns: &mut [u64], per_cycle: u64) -> Measured {
    if cycles_ns.is_empty() {
        return m;
    }
    m.secs = cycles_ns.iter().sum::<u64>() as f64 / 1e9;
    cycles_ns.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let n = cycles_ns.len();
    let spread = format!(
        "{n} cycles of {per_cycle}: {:.1} ms per cycle, median ({:.1} to {:.1})",
        ms(cycles_ns[n / 2]),
        ms(cycles_ns[0]),
        ms(cycles_ns[n - 1])
    );
    let note = match m.note.take() {
        Some(n) => format!("{spread}; {n}"),
        None => spread,
    };
    m.with_note(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Tally;

    #[test]
    fn the_rate_counts_the_cycles_only() {
        let m = Tally::new().measured(20, 8);
        let m = measured(m, &mut [3_000_000, 1_000_000], 10);
        assert!((m.secs - 0.004).abs() < 1e-12);
        assert_eq!(
            m.note.as_deref(),
            Some("2 cycles of 10: 3.0 ms per cycle, median (1.0 to 3.0)")
        );
    }
}
