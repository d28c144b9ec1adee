//! `cargo xtask fuzz [TARGET] [--seconds N]`: runs cargo-fuzz on `mq-core/fuzz`.

use std::process::Command;

use crate::cmd::{self, Step, cargo, run, succeeds};
use crate::failure::Failure;

/// The fuzz project, relative to the workspace root.
const FUZZ_DIR: &str = "mq-core/fuzz";

/// The targets run when none is named.
const TARGETS: &[&str] = &[
    "stream_decoder",
    "serial_decoder",
    "frame_decode",
    "mqtt_decode",
    "mqtt_stream",
    "mqtt_topic",
    "mqtt_broker",
];

const DEFAULT_SECONDS: u64 = 30;

pub const USAGE: &str = "\
usage: cargo xtask fuzz [TARGET] [--seconds N]

Runs cargo-fuzz (nightly) on mq-core/fuzz for N seconds per target (default 30).
Without TARGET runs each of: stream_decoder, serial_decoder, frame_decode,
mqtt_decode, mqtt_stream, mqtt_topic, mqtt_broker.
Corpora live in mq-core/fuzz/corpus/<target>, crashes in mq-core/fuzz/artifacts/<target>.";

#[derive(Debug, PartialEq)]
enum Request {
    Help,
    Run {
        target: Option<String>,
        seconds: u64,
    },
}

pub fn run_fuzz(args: &[String]) -> Result<(), Failure> {
    let (targets, seconds) = match parse(args).map_err(Failure::Usage)? {
        Request::Help => {
            println!("{USAGE}");
            return Ok(());
        }
        Request::Run {
            target: Some(target),
            seconds,
        } => (vec![target], seconds),
        Request::Run {
            target: None,
            seconds,
        } => (TARGETS.iter().map(|t| t.to_string()).collect(), seconds),
    };

    let root = cmd::workspace_root();
    if !root.join(FUZZ_DIR).join("Cargo.toml").is_file() {
        return Err(Failure::Failed(format!(
            "no fuzz project: {FUZZ_DIR}/Cargo.toml does not exist"
        )));
    }
    ensure_nightly().map_err(Failure::Failed)?;
    ensure_cargo_fuzz().map_err(Failure::Failed)?;

    for target in &targets {
        let step = Step::start(&format!("fuzz {target} for {seconds}s"));
        run(cargo().args(["+nightly", "fuzz", "run", target, "--fuzz-dir", FUZZ_DIR]).args([
            "--".to_owned(),
            format!("-max_total_time={seconds}"),
        ]))
        .map_err(|err| {
            Failure::Failed(format!(
                "{err}\nfuzz target `{target}` failed; a crashing input, if any, is in {FUZZ_DIR}/artifacts/{target}/"
            ))
        })?;
        println!(
            "    {target}: no failure in {}",
            cmd::format_duration(step.elapsed())
        );
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<Request, String> {
    let mut target = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Request::Help),
            "--seconds" => args.next().ok_or("`--seconds` needs a value")?.as_str(),
            flag if flag.starts_with("--seconds=") => &flag["--seconds=".len()..],
            flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`")),
            name => {
                if let Some(first) = target.replace(name.to_owned()) {
                    return Err(format!("one target at a time, got `{first}` and `{name}`"));
                }
                continue;
            }
        };
        seconds = match value.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "`--seconds` wants a whole number above 0, got `{value}`"
                ));
            }
        };
    }
    Ok(Request::Run { target, seconds })
}

/// Makes sure rustup has a nightly toolchain, installing a minimal one if not.
fn ensure_nightly() -> Result<(), String> {
    let toolchains = cmd::stdout_of(Command::new("rustup").args(["toolchain", "list"])).ok_or(
        "fuzzing needs rustup (for the nightly toolchain), and `rustup toolchain list` failed",
    )?;
    if toolchains.lines().any(|line| line.starts_with("nightly")) {
        return Ok(());
    }
    println!("no nightly toolchain: installing it with rustup (cargo-fuzz needs nightly)");
    run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
}

/// Makes sure `cargo +nightly fuzz` works, installing cargo-fuzz if not.
fn ensure_cargo_fuzz() -> Result<(), String> {
    if succeeds(cargo().args(["+nightly", "fuzz", "--version"])) {
        return Ok(());
    }
    println!("cargo-fuzz is missing: installing it with `cargo install cargo-fuzz --locked`");
    run(cargo().args(["install", "cargo-fuzz", "--locked"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Request, String> {
        parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_to_every_target_for_30_seconds() {
        assert_eq!(
            parse_strs(&[]),
            Ok(Request::Run {
                target: None,
                seconds: 30
            })
        );
    }

    #[test]
    fn takes_a_target_and_seconds_in_either_order_and_form() {
        let want = Ok(Request::Run {
            target: Some("frame_decode".to_owned()),
            seconds: 5,
        });
        assert_eq!(parse_strs(&["frame_decode", "--seconds", "5"]), want);
        assert_eq!(parse_strs(&["--seconds=5", "frame_decode"]), want);
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse_strs(&["--seconds"]).is_err());
        assert!(parse_strs(&["--seconds", "0"]).is_err());
        assert!(parse_strs(&["--seconds", "ten"]).is_err());
        assert!(parse_strs(&["--verbose"]).is_err());
        assert!(parse_strs(&["a", "b"]).is_err());
        assert_eq!(parse_strs(&["--help"]), Ok(Request::Help));
    }
}
