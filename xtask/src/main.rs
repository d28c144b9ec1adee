//! `cargo xtask <task>`: the project's automation, in Rust with std only
//! (see `.cargo/config.toml` for the alias).

mod bench;
mod ci;
mod cmd;
mod fuzz;

use std::env;
use std::process::ExitCode;

/// The tasks, as listed by `cargo xtask help`.
const TASKS: &[(&str, &str)] = &[
    (
        "ci",
        "everything CI checks: fmt, clippy, tests, no_std builds of mq-core",
    ),
    (
        "bench [--quick] [--pause-compilers] ...",
        "mq side by side with NATS, Mosquitto, Redis, ZeroMQ, liner, raw TCP; rewrites BENCHMARKS.md",
    ),
    (
        "fuzz [TARGET] [--seconds N]",
        "run cargo-fuzz on mq-core/fuzz (all targets, 30 s each, by default)",
    ),
    ("help", "print this list"),
];

/// How a task ended when it did not succeed; decides the exit code.
pub enum Failure {
    /// Bad arguments: the message and the usage are printed, exit code 2.
    Usage(String),
    /// The task failed: the message is printed, exit code 1.
    Failed(String),
    /// The task failed and has already said why, exit code 1.
    Reported,
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "bench" => bench::run_bench(rest),
        "ci" => ci::run_ci(rest),
        "fuzz" => fuzz::run_fuzz(rest),
        "help" | "-h" | "--help" => {
            print!("{}", usage());
            Ok(())
        }
        other => Err(Failure::Usage(format!("unknown task `{other}`"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("xtask {task}: {message}\n");
            if task == "fuzz" {
                eprintln!("{}", fuzz::USAGE);
            } else if task == "bench" {
                eprintln!("{}", bench::USAGE);
            } else {
                eprint!("{}", usage());
            }
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("xtask {task}: error: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
    }
}

fn usage() -> String {
    let width = TASKS.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut text = String::from("usage: cargo xtask <task>\n\ntasks:\n");
    for (name, what) in TASKS {
        text += &format!("  {name:width$}  {what}\n");
    }
    text
}
