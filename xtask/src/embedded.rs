//! CI checks for `mq-embedded`: it builds for the Cortex-M target.
//!
//! Its host tests (the drivers against a real `mqd`, through an in-memory
//! smoltcp bridge and over a pseudo-terminal) run in `cargo test --workspace`
//! and need no setup: they build `mqd` themselves.

use std::process::Command;

use crate::cmd::run;

/// `cargo build -p mq-embedded` for the no_std target with both drivers and
/// defmt logging; `cmd` is `cargo build --target ...` through the route the
/// no_std steps chose. (The host build cannot tell: a dependency that pulls in
/// `std` only fails here.)
pub fn nostd(mut cmd: Command) -> Result<(), String> {
    cmd.args(["--package", "mq-embedded"]).args([
        "--no-default-features",
        "--features",
        "tcp,serial,defmt",
    ]);
    run(&mut cmd)
}
