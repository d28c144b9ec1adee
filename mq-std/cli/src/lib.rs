//! The mq programs: `mqd`, the broker daemon (`src/bin/mqd.rs`), and `mq`, its
//! command-line client (`src/bin/mq`), and `mqd`'s configuration
//! ([`config`]).
//!
//! This is the only package with the programs' own dependencies (clap,
//! tracing-subscriber, serde_json, mimalloc), so libraries never build them;
//! the `mq-std` facade does not re-export it for the same reason.
//!
//! ```sh
//! cargo run --release -p mq-cli --bin mqd
//! cargo run -p mq-cli --bin mq -- sub 'sensors.>'
//! ```

pub mod config;
