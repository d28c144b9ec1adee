//! Where the mq part of a firmware build's code comes from, file by file.
//!
//! Under LTO the client is inlined into the application (symbol names say
//! little), so each instruction of `.text` is given to the innermost frame of
//! its `addr2line -i` chain that is in mq's sources (standard library code
//! inlined into mq's counts as mq's). `cargo xtask firmware` prints the files
//! this way for the mq build: the table of README's "Sizes".

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cmd;
use crate::panic_paths::{ADDR2LINE, OBJDUMP, PACKAGE, mq_source, parse_chains};

/// Prints the bytes of `.text` each mq source file owns, largest first, and
/// their sum.
pub fn print(elf: &Path) -> Result<(), String> {
    cmd::ensure_program(OBJDUMP, PACKAGE)?;
    let disassembly = cmd::stdout_of(
        Command::new(OBJDUMP)
            .args(["-d", "--no-show-raw-insn", "-j", ".text"])
            .arg(elf),
    )
    .ok_or_else(|| format!("`{OBJDUMP} -d {}` failed", elf.display()))?;
    let sizes = instruction_sizes(&disassembly);
    let addresses: String = sizes.keys().map(|a| format!("{a:#x}\n")).collect();
    let chains = parse_chains(&addr2line(elf, addresses)?);
    let files = by_file(&sizes, &chains);
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    println!("mq's code by source file (innermost mq frame of each instruction; total {total}):");
    for (file, bytes) in &files {
        println!("{bytes:>8}  {file}");
    }
    Ok(())
}

/// `addr2line -a -i` over `addresses` (one a line), fed through its input:
/// the addresses of a whole `.text` are too many for a command line.
fn addr2line(elf: &Path, addresses: String) -> Result<String, String> {
    let failed = || format!("`{ADDR2LINE}` on {} failed", elf.display());
    let mut child = Command::new(ADDR2LINE)
        .args(["-a", "-i", "-e"])
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| failed())?;
    let mut stdin = child.stdin.take().ok_or_else(failed)?;
    // Written from a thread: the output would fill its pipe before the input
    // is all written.
    let writer = std::thread::spawn(move || stdin.write_all(addresses.as_bytes()));
    let out = child.wait_with_output().map_err(|_| failed())?;
    writer.join().map_err(|_| failed())?.map_err(|_| failed())?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        .ok_or_else(failed)
}

/// Each instruction's (or literal's) address and size, from `objdump -d`
/// lines (`    4ca4:<TAB>push ...`): the distance to the next address.
fn instruction_sizes(disassembly: &str) -> BTreeMap<u64, u64> {
    let addresses: Vec<u64> = disassembly
        .lines()
        .filter(|line| line.starts_with(' '))
        .filter_map(|line| line.trim_start().split_once(":\t"))
        .filter_map(|(addr, _)| u64::from_str_radix(addr, 16).ok())
        .collect();
    addresses
        .windows(2)
        .map(|pair| (pair[0], pair[1] - pair[0]))
        // The last instruction's size is not known: a Thumb half-word.
        .chain(addresses.last().map(|&a| (a, 2)))
        .collect()
}

/// Bytes per mq source file (`mq-core/src/client/held.rs`), largest first.
fn by_file(sizes: &BTreeMap<u64, u64>, chains: &BTreeMap<u64, Vec<String>>) -> Vec<(String, u64)> {
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    for (addr, size) in sizes {
        let file = chains
            .get(addr)
            .and_then(|chain| chain.iter().find_map(|loc| mq_source(loc)))
            .map(|source| source.split(':').next().unwrap_or_default().to_owned());
        if let Some(file) = file {
            *files.entry(file).or_default() += size;
        }
    }
    let mut files: Vec<_> = files.into_iter().collect();
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_go_to_their_innermost_mq_file() {
        let disassembly = "\
00004ca4 <mps2_an386::run>:
    4ca4:\tpush\t{r4, r5, r7, lr}
    4ca6:\tbl\t7884 <f>
    4caa:\tmovs\tr0, #1
    4cac:\t.word\t0x12345678
    4cb0:\tbx\tlr
";
        let sizes = instruction_sizes(disassembly);
        assert_eq!(
            sizes.into_iter().collect::<Vec<_>>(),
            [
                (0x4ca4, 2),
                (0x4ca6, 4),
                (0x4caa, 2),
                (0x4cac, 4),
                (0x4cb0, 2)
            ]
        );
        let sizes = instruction_sizes(disassembly);
        let chains = parse_chains(
            "0x00004ca4\n/r/mq-core/src/client/held.rs:10\n/r/mq-embedded/src/tcp.rs:5\n\
             0x00004ca6\n/rustc/x/library/core/src/slice/mod.rs:1\n/r/mq-embedded/src/tcp.rs:7\n\
             0x00004caa\n/r/mq-embedded/firmware/mps2-an386/src/app.rs:3\n\
             0x00004cac\n/r/mq-core/src/client/held.rs:12\n\
             0x00004cb0\n??:0\n",
        );
        assert_eq!(
            by_file(&sizes, &chains),
            [
                ("mq-core/src/client/held.rs".to_owned(), 6),
                ("mq-embedded/src/tcp.rs".to_owned(), 4)
            ]
        );
    }
}
