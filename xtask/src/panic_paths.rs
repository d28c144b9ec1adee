//! The check that the mq part of the firmware has no panicking path.
//!
//! Under LTO the client's code is inlined into the application's, so symbol
//! names cannot say whose a panic is. The source lines can: the firmware is
//! built with line tables (`debug = "line-tables-only"`, in no section that
//! `arm-none-eabi-size` counts), every call to a function
//! that panics is found in the disassembly, and `addr2line -i` gives the chain
//! of inlined frames at that call. Its owner is the innermost frame outside the
//! standard library and `heapless` (whose bounds checks are the caller's
//! indexing): when that frame is in `mq-core/src` or `mq-embedded/src`, the mq
//! part of the firmware can panic there.
//!
//! A function "panics" when it is `core::panicking::*` or the panic handler's
//! entry, or a standard library function that calls one (`unwrap_failed`,
//! `slice_index_fail`, ...): the closure of those over the call graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::cmd;

pub(crate) const OBJDUMP: &str = "arm-none-eabi-objdump";
pub(crate) const ADDR2LINE: &str = "arm-none-eabi-addr2line";
pub(crate) const PACKAGE: &str = "binutils-arm-none-eabi";

/// Panicking paths in mq's sources that are known and left, each with why: the
/// check fails on any other. Remove an entry once its file is fixed.
const KNOWN: &[(&str, &str)] = &[];

/// Where in mq's sources a call to a panicking function comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PanicSite {
    /// `mq-core/src/...:line`.
    pub source: String,
    /// The panicking function called.
    pub callee: String,
}

/// Finds the panicking paths of mq's code in `elf` (built with line tables),
/// prints them, and fails when one is not [`KNOWN`].
pub fn check(elf: &Path) -> Result<(), String> {
    cmd::ensure_program(OBJDUMP, PACKAGE)?;
    let disassembly = cmd::stdout_of(
        Command::new(OBJDUMP)
            .args(["-d", "--no-show-raw-insn", "-C"])
            .arg(elf),
    )
    .ok_or_else(|| format!("`{OBJDUMP} -d {}` failed", elf.display()))?;
    let calls = parse_calls(&disassembly);
    let panicking = panicking_functions(&calls);
    let sites: Vec<&Call> = calls
        .iter()
        .filter(|c| panicking.contains(&c.callee) && !panicking.contains(&c.caller))
        .collect();
    let mut addr2line = Command::new(ADDR2LINE);
    addr2line.args(["-a", "-i", "-e"]).arg(elf);
    addr2line.args(sites.iter().map(|c| format!("{:#x}", c.addr)));
    let chains = cmd::stdout_of(&mut addr2line)
        .map(|out| parse_chains(&out))
        .ok_or_else(|| format!("`{ADDR2LINE}` on {} failed", elf.display()))?;
    if sites.is_empty() || chains.is_empty() {
        return Err(format!(
            "no calls to panicking functions found in {}: nothing was checked",
            elf.display()
        ));
    }
    let found: BTreeSet<PanicSite> = sites
        .iter()
        .filter_map(|c| {
            let source = mq_source(owner(chains.get(&c.addr)?)?)?;
            Some(PanicSite {
                source,
                callee: c.callee.clone(),
            })
        })
        .collect();
    let known = |site: &PanicSite| KNOWN.iter().find(|(file, _)| site.source.starts_with(file));
    let mut unknown = 0;
    for site in &found {
        match known(site) {
            Some((_, why)) => println!("    known: {} -> {} ({why})", site.source, site.callee),
            None => {
                println!("    PANICS: {} -> {}", site.source, site.callee);
                unknown += 1;
            }
        }
    }
    println!(
        "    {} calls to panicking functions in the firmware; {} from mq's sources, {unknown} not known",
        sites.len(),
        found.len()
    );
    match unknown {
        0 => Ok(()),
        n => Err(format!(
            "{n} panicking paths in the mq part of the firmware"
        )),
    }
}

/// A branch from one function to another.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    addr: u64,
    caller: String,
    callee: String,
}

/// Branches to other functions in `objdump -d -C` output: lines such as
/// `  4d06:<TAB>bl<TAB>bd84 <core::panicking::panic_bounds_check>` under a
/// `00004ca4 <mps2_an386::run>:` heading.
fn parse_calls(disassembly: &str) -> Vec<Call> {
    let mut caller: Option<&str> = None;
    let mut calls = Vec::new();
    for line in disassembly.lines() {
        if let Some(name) = line
            .split_once(" <")
            .filter(|(addr, _)| !addr.starts_with(' ') && u64::from_str_radix(addr, 16).is_ok())
            .and_then(|(_, rest)| rest.strip_suffix(">:"))
        {
            caller = Some(name);
            continue;
        }
        let (Some(caller), Some((addr, rest))) = (caller, line.trim_start().split_once(":\t"))
        else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        let Some(target) = rest.split_once(" <").map(|(_, t)| t) else {
            continue;
        };
        let Some(callee) = target.strip_suffix('>') else {
            continue;
        };
        // `<f+0x12>` is inside a function: a branch within it when it is the caller.
        let callee = callee.split_once("+0x").map_or(callee, |(name, _)| name);
        if callee != caller {
            calls.push(Call {
                addr,
                caller: caller.to_owned(),
                callee: callee.to_owned(),
            });
        }
    }
    calls
}

fn is_std(name: &str) -> bool {
    ["core::", "<core::", "alloc::", "<alloc::"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// `core::panicking::*` and the panic handler's entry, and every standard
/// library function that calls one of them.
fn panicking_functions(calls: &[Call]) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = calls
        .iter()
        .map(|c| &c.callee)
        .filter(|f| f.starts_with("core::panicking::") || f.ends_with("rust_begin_unwind"))
        .cloned()
        .collect();
    loop {
        let more: Vec<String> = calls
            .iter()
            .filter(|c| is_std(&c.caller) && set.contains(&c.callee) && !set.contains(&c.caller))
            .map(|c| c.caller.clone())
            .collect();
        if more.is_empty() {
            return set;
        }
        set.extend(more);
    }
}

/// `addr2line -a -i` output: each address (`0x00004d06`), then its frames,
/// innermost first, as `file:line` (with `-f`, not used here, names too).
pub(crate) fn parse_chains(out: &str) -> BTreeMap<u64, Vec<String>> {
    let mut chains = BTreeMap::new();
    let mut current: Option<u64> = None;
    for line in out.lines() {
        if let Some(hex) = line.strip_prefix("0x") {
            current = u64::from_str_radix(hex, 16).ok();
            if let Some(addr) = current {
                chains.insert(addr, Vec::new());
            }
        } else if let Some(chain) = current.and_then(|addr| chains.get_mut(&addr)) {
            chain.push(line.trim().to_owned());
        }
    }
    chains
}

/// The frame a call belongs to: the innermost outside the standard library
/// and `heapless`.
fn owner(chain: &[String]) -> Option<&str> {
    chain.iter().map(String::as_str).find(|loc| {
        !loc.contains("/rustc/") && !loc.contains("/library/") && !loc.contains("/heapless-")
    })
}

/// `mq-core/src/...:line` when the location is in mq's sources.
pub(crate) fn mq_source(location: &str) -> Option<String> {
    ["/mq-core/src/", "/mq-embedded/src/"]
        .iter()
        .find_map(|dir| {
            let (_, rest) = location.split_once(dir)?;
            Some(format!("{}{rest}", &dir[1..]))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISASSEMBLY: &str = "\
00004ca4 <mps2_an386::run>:
    4ca4:	push	{r4, r5, r7, lr}
    4cb0:	bl	7884 <mq_core::client::held::Held<_>::insert>
    4cb4:	b.n	4ca8 <mps2_an386::run+0x4>
    4d06:	bl	bd84 <core::panicking::panic_bounds_check>

0000bbf2 <core::option::unwrap_failed>:
    bbf8:	bl	b4d8 <core::panicking::panic_fmt>

0000bd84 <core::panicking::panic_bounds_check>:
    bd90:	bl	b4d8 <core::panicking::panic_fmt>

0000c000 <firmware::app::f>:
    c004:	bl	bbf2 <core::option::unwrap_failed>
";

    #[test]
    fn calls_leave_out_branches_within_a_function() {
        let calls = parse_calls(DISASSEMBLY);
        let pairs: Vec<(u64, &str, &str)> = calls
            .iter()
            .map(|c| (c.addr, c.caller.as_str(), c.callee.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    0x4cb0,
                    "mps2_an386::run",
                    "mq_core::client::held::Held<_>::insert"
                ),
                (
                    0x4d06,
                    "mps2_an386::run",
                    "core::panicking::panic_bounds_check"
                ),
                (
                    0xbbf8,
                    "core::option::unwrap_failed",
                    "core::panicking::panic_fmt"
                ),
                (
                    0xbd90,
                    "core::panicking::panic_bounds_check",
                    "core::panicking::panic_fmt"
                ),
                (0xc004, "firmware::app::f", "core::option::unwrap_failed"),
            ]
        );
    }

    #[test]
    fn panicking_closes_over_the_standard_library_only() {
        let set = panicking_functions(&parse_calls(DISASSEMBLY));
        let names: Vec<&str> = set.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "core::option::unwrap_failed",
                "core::panicking::panic_bounds_check",
                "core::panicking::panic_fmt"
            ]
        );
    }

    #[test]
    fn a_call_belongs_to_its_innermost_frame_outside_the_libraries() {
        let out = "0x00004d06\n\
            /rustc/59807616e/library/core/src/slice/index.rs:261\n\
            /root/.cargo/registry/src/x/heapless-0.9.3/src/vec/mod.rs:922\n\
            /work/wt/mq-core/src/client/held.rs:256\n\
            /work/wt/mq-embedded/firmware/mps2-an386/src/app_mq.rs:300\n\
            0x0000c004\n\
            /work/wt/mq-embedded/firmware/mps2-an386/src/app_mq.rs:12\n";
        let chains = parse_chains(out);
        assert_eq!(chains.len(), 2);
        let held = owner(&chains[&0x4d06]).unwrap();
        assert_eq!(
            mq_source(held).as_deref(),
            Some("mq-core/src/client/held.rs:256")
        );
        let app = owner(&chains[&0xc004]).unwrap();
        assert_eq!(mq_source(app), None);
    }
}
