//! `cargo xtask firmware`: builds every variant of the mps2-an386 firmware
//! (release), runs the firmware library's unit tests on the host, and prints each
//! variant's flash and RAM use as `arm-none-eabi-size` reports them.
//!
//! The firmware is its own Cargo project (`mq-embedded/firmware/mps2-an386`, not
//! a workspace member); its build output goes to `<target dir>/firmware`, and each
//! variant's ELF is copied to `<target dir>/firmware/mps2-an386-<variant>.elf`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::by_source;
use crate::cmd::{self, Step, run};
use crate::failure::Failure;
use crate::goals;
use crate::panic_paths;
use crate::symbols;
use crate::toolchain::{NOSTD_TARGET, Route};

/// The firmware project, relative to the workspace root.
pub const FIRMWARE_DIR: &str = "mq-embedded/firmware/mps2-an386";

/// The firmware's binary target.
const BIN: &str = "mps2-an386";

/// The size tool the issue names, and the Debian package that has it.
const SIZE_TOOL: &str = "arm-none-eabi-size";
const SIZE_PACKAGE: &str = "binutils-arm-none-eabi";

/// Debian's rustc has no linker for the board: GCC's, without its start files
/// (cortex-m-rt brings its own; build.rs adds `-Tlink.x`).
const DEBIAN_RUSTFLAGS: &str = "-C linker=arm-none-eabi-gcc -C link-arg=-nostartfiles";

/// How many symbols the size step lists (those that grew most from the
/// baseline to the mq build).
const GROWTH_ROWS: usize = 30;

/// One build of the firmware: the same board code with a different application.
pub struct Variant {
    pub name: &'static str,
    /// Cargo features of the firmware project.
    pub features: &'static [&'static str],
    pub what: &'static str,
}

/// The variants, each built by `cargo xtask firmware`. `baseline` has no mq code:
/// it is the reference the mq application's size is measured against.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "baseline",
        features: &[],
        what: "board, LAN9118, DHCP/static, TCP smoke test; no mq code",
    },
    Variant {
        name: "mq",
        features: &["mq"],
        what: "the same board and network with the mq application (TcpClient)",
    },
    Variant {
        name: "serial",
        features: &["serial"],
        what: "the mq application over UART0 (SerialClient); the network unused",
    },
];

/// A built variant.
pub struct Built {
    pub variant: &'static Variant,
    pub elf: PathBuf,
}

pub fn run_firmware(args: &[String]) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(Failure::Usage(format!(
            "`firmware` takes no arguments, got `{arg}`"
        )));
    }
    check().map_err(Failure::Failed)
}

/// Builds every variant, runs the host tests, prints the sizes, and checks
/// that the mq part of the mq build has no panicking path.
pub fn check() -> Result<(), String> {
    let built = build()?;
    host_tests()?;
    print_sizes(&built)?;
    for name in ["mq", "serial"] {
        Step::start(&format!("panicking paths from mq's sources ({name} build)"));
        let elf = built
            .iter()
            .find(|b| b.variant.name == name)
            .ok_or_else(|| format!("no {name} variant was built"))?;
        panic_paths::check(&elf.elf)?;
    }
    Ok(())
}

/// Where the firmware's build output goes.
pub fn target_dir() -> PathBuf {
    cmd::target_dir().join("firmware")
}

fn project_dir() -> PathBuf {
    cmd::workspace_root().join(FIRMWARE_DIR)
}

/// Builds every variant (release) after making sure the board's target is there
/// (rustup, else Debian's toolchain); returns where each ELF is.
pub fn build() -> Result<Vec<Built>, String> {
    let route = Route::choose()?;
    let target_dir = target_dir();
    let mut built = Vec::new();
    for variant in VARIANTS {
        let step = Step::start(&format!("build firmware `{}`", variant.name));
        let mut cargo = route.cargo_build(&project_dir(), &target_dir);
        cargo.args(["--release", "--bin", BIN]);
        if !variant.features.is_empty() {
            cargo.args(["--features", &variant.features.join(",")]);
        }
        if route == Route::Debian {
            cargo.env("RUSTFLAGS", DEBIAN_RUSTFLAGS);
        }
        run(&mut cargo)?;
        let out_dir = match route {
            Route::Rustup => target_dir.clone(),
            Route::Debian => target_dir.join("debian"),
        };
        let from = out_dir.join(NOSTD_TARGET).join("release").join(BIN);
        let elf = target_dir.join(format!("{BIN}-{}.elf", variant.name));
        fs::copy(&from, &elf)
            .map_err(|err| format!("copy {} to {}: {err}", from.display(), elf.display()))?;
        println!(
            "    {} in {}",
            elf.display(),
            cmd::format_duration(step.elapsed())
        );
        built.push(Built { variant, elf });
    }
    Ok(built)
}

/// The firmware library's unit tests (argument parsing, clock, driver status
/// words, addressing), on the host.
fn host_tests() -> Result<(), String> {
    Step::start("firmware library unit tests (host)");
    let host = host_triple()?;
    run(firmware_cargo()
        .args(["test", "--lib", "--target", &host, "--target-dir"])
        .arg(target_dir()))
}

/// `cargo fmt --check` and `cargo clippy -D warnings` on the firmware project, for
/// the board (every variant) and for the host (its tests): the workspace's own
/// checks do not reach it.
pub fn lint() -> Result<(), String> {
    run(firmware_cargo().args(["fmt", "--", "--check"]))?;
    let clippy = |target: &str| {
        let mut clippy = firmware_cargo();
        clippy.args(["clippy", "--release", "--target", target, "--target-dir"]);
        clippy.arg(target_dir());
        clippy
    };
    // Each variant's application, on the board.
    for variant in VARIANTS {
        let mut cmd = clippy(NOSTD_TARGET);
        if !variant.features.is_empty() {
            cmd.args(["--features", &variant.features.join(",")]);
        }
        run(cmd.args(["--", "-D", "warnings"]))?;
    }
    // The library and its tests, on the host.
    run(clippy(&host_triple()?).args(["--lib", "--tests", "--", "-D", "warnings"]))
}

/// rustup's `cargo`, run in the firmware project.
fn firmware_cargo() -> Command {
    let mut cargo = Command::new("cargo");
    cargo.current_dir(project_dir());
    cargo
}

fn host_triple() -> Result<String, String> {
    let version = cmd::stdout_of(Command::new("rustc").arg("-vV")).ok_or("`rustc -vV` failed")?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "`rustc -vV` names no host".to_owned())
}

/// Section sizes of an ELF, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub text: u64,
    pub data: u64,
    pub bss: u64,
}

impl Sizes {
    /// Flash: code and constants, plus the initial values of `.data`.
    pub fn flash(self) -> u64 {
        self.text + self.data
    }

    /// Static RAM (the stack comes on top).
    pub fn ram(self) -> u64 {
        self.data + self.bss
    }
}

/// Runs `arm-none-eabi-size` on `elf` (installing it if missing).
pub fn sizes(elf: &Path) -> Result<Sizes, String> {
    cmd::ensure_program(SIZE_TOOL, SIZE_PACKAGE)?;
    let out = cmd::stdout_of(Command::new(SIZE_TOOL).arg(elf))
        .ok_or_else(|| format!("`{SIZE_TOOL} {}` failed", elf.display()))?;
    parse_berkeley(&out).ok_or_else(|| format!("cannot read the output of {SIZE_TOOL}:\n{out}"))
}

/// Reads `size`'s default (Berkeley) output: a header, then `text data bss dec hex file`.
fn parse_berkeley(out: &str) -> Option<Sizes> {
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    if header.get(..3)? != ["text", "data", "bss"] {
        return None;
    }
    let numbers: Vec<u64> = lines
        .next()?
        .split_whitespace()
        .take(3)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    match numbers[..] {
        [text, data, bss] => Some(Sizes { text, data, bss }),
        _ => None,
    }
}

fn print_sizes(built: &[Built]) -> Result<(), String> {
    Step::start(&format!("firmware sizes ({SIZE_TOOL})"));
    let sizes = built
        .iter()
        .map(|b| Ok((b.variant, sizes(&b.elf)?)))
        .collect::<Result<Vec<_>, String>>()?;
    println!(
        "{:<10} {:>8} {:>6} {:>7} {:>8} {:>7}  what",
        "variant", "text", "data", "bss", "flash", "RAM"
    );
    for (variant, s) in &sizes {
        println!(
            "{:<10} {:>8} {:>6} {:>7} {:>8} {:>7}  {}",
            variant.name,
            s.text,
            s.data,
            s.bss,
            s.flash(),
            s.ram(),
            variant.what
        );
    }
    let named = |name: &str| sizes.iter().find(|(v, _)| v.name == name).map(|(_, s)| *s);
    // The serial build has no network to compare with the baseline's.
    if let (Some(baseline), Some(mq)) = (named("baseline"), named("mq")) {
        let what = "what the mq client and application add";
        println!("{}", difference("mq - base", baseline, mq, what));
    }
    println!("(bytes; flash = text + data; RAM = data + bss, without the stack)");
    let elf = |name: &str| {
        built
            .iter()
            .find(|b| b.variant.name == name)
            .map(|b| &b.elf)
    };
    if let (Some(baseline), Some(mq)) = (elf("baseline"), elf("mq")) {
        symbols::print_growth(baseline, mq, GROWTH_ROWS)?;
    }
    if let (Some(baseline), Some(mq), Some(mq_elf)) = (named("baseline"), named("mq"), elf("mq")) {
        goals::check(baseline, mq, mq_elf)?;
    }
    if let Some(mq) = elf("mq") {
        by_source::print(mq)?;
    }
    Ok(())
}

/// What a build adds to the baseline (the mq client, its buffers and the
/// application), as a row `label` of the table.
fn difference(label: &str, baseline: Sizes, mq: Sizes, what: &str) -> String {
    let delta = |a: u64, b: u64| b as i64 - a as i64;
    format!(
        "{label:<10} {:>+8} {:>+6} {:>+7} {:>+8} {:>+7}  {what}",
        delta(baseline.text, mq.text),
        delta(baseline.data, mq.data),
        delta(baseline.bss, mq.bss),
        delta(baseline.flash(), mq.flash()),
        delta(baseline.ram(), mq.ram()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_berkeley_size_output() {
        let out = "   text\t   data\t    bss\t    dec\t    hex\tfilename\n  65056\t      8\t  28336\t  93400\t  16cd8\tfw.elf\n";
        let sizes = parse_berkeley(out).unwrap();
        assert_eq!(
            sizes,
            Sizes {
                text: 65056,
                data: 8,
                bss: 28336
            }
        );
        assert_eq!((sizes.flash(), sizes.ram()), (65064, 28344));
        assert_eq!(parse_berkeley("text data\n1 2\n"), None);
        assert_eq!(parse_berkeley("text data bss\n1 x 3\n"), None);
        assert_eq!(parse_berkeley(""), None);
    }

    #[test]
    fn difference_is_signed_per_column() {
        let line = difference(
            "mq - base",
            Sizes {
                text: 100,
                data: 8,
                bss: 50,
            },
            Sizes {
                text: 150,
                data: 4,
                bss: 80,
            },
            "what the mq client and application add",
        );
        let numbers: Vec<&str> = line.split_whitespace().skip(3).take(5).collect();
        assert_eq!(numbers, ["+50", "-4", "+30", "+46", "+26"]);
    }
}
