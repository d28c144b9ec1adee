//! A run's result as one line of text, so a run made in a child process
//! (`mq-peer-load`, mq's peers) reaches this program's table: the counts, the
//! time, the latencies as 1,000 quantiles (a histogram rebuilt from them
//! gives the same p50, p99 and p99.9) and the note.

use crate::histogram::Histogram;
use crate::measure::Measured;

/// What the line starts with.
const TAG: &str = "mq-peer-load:";
/// Latency quantiles on the line.
const QUANTILES: u64 = 1000;

/// `m` as a line (no CPU: the parent measures that).
pub fn write(m: &Measured) -> String {
    let lat: Vec<String> = (1..=QUANTILES)
        .map(|i| {
            let q = i as f64 / QUANTILES as f64;
            m.latency.quantile(q).unwrap_or(0).to_string()
        })
        .collect();
    let lat = if m.latency.count() == 0 {
        String::from("-")
    } else {
        lat.join(",")
    };
    format!(
        "{TAG} expected={} delivered={} secs={} size={} lat={lat} note={}",
        m.expected,
        m.delivered,
        m.secs,
        m.size,
        m.note.as_deref().unwrap_or("").replace('\n', " ")
    )
}

/// The result in a child's output: its last line written by [`write`].
pub fn read(output: &str) -> Result<Measured, String> {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(TAG))
        .ok_or("no result line")?;
    let (fields, note) = line.split_once(" note=").ok_or("no note field")?;
    let field = |name: &str| -> Result<&str, String> {
        fields
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .ok_or(format!("no {name} in the result line"))
    };
    let num = |name: &str| -> Result<u64, String> {
        field(name)?
            .parse()
            .map_err(|e| format!("{name} in the result line: {e}"))
    };
    let mut latency = Histogram::default();
    let lat = field("lat")?;
    if lat != "-" {
        for v in lat.split(',') {
            latency.record(v.parse().map_err(|e| format!("a latency: {e}"))?);
        }
    }
    Ok(Measured {
        expected: num("expected")?,
        delivered: num("delivered")?,
        secs: field("secs")?
            .parse()
            .map_err(|e| format!("secs in the result line: {e}"))?,
        size: num("size")? as usize,
        latency,
        note: (!note.is_empty()).then(|| note.to_string()),
        cpu: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Tally;

    #[test]
    fn a_result_survives_the_line_with_its_quantiles() {
        let tally = Tally::new();
        let mut rec = tally.recorder();
        let mut stamp = tally.stamp(16);
        for _ in 0..5000 {
            rec.record(stamp.next());
        }
        drop(rec);
        let m = tally
            .measured(6000, 16)
            .with_note("1000 LOST; nothing else");
        let back = read(&format!("noise\n{}\n", write(&m))).expect("a result");
        assert_eq!((back.expected, back.delivered, back.size), (6000, 5000, 16));
        assert_eq!(back.secs, m.secs);
        assert_eq!(back.note, m.note);
        for q in [0.5, 0.99, 0.999] {
            assert_eq!(back.latency.quantile(q), m.latency.quantile(q), "q {q}");
        }
    }

    #[test]
    fn says_what_is_missing() {
        assert!(read("nothing here").is_err());
        assert!(read("mq-peer-load: expected=1 note=").is_err());
    }
}
