//! Where a firmware build's flash goes, symbol by symbol: the code and
//! constants of two ELFs (`arm-none-eabi-nm --size-sort -S -C`) compared by
//! name, largest growth first. `cargo xtask firmware` prints what the mq build
//! adds to the baseline this way, so the table of where the bytes go is one
//! command away (README, "Sizes").

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::cmd;

/// The symbol tool, from the same Debian package as `arm-none-eabi-size`.
const NM_TOOL: &str = "arm-none-eabi-nm";
const NM_PACKAGE: &str = "binutils-arm-none-eabi";

/// Anonymous constants (string literals, panic locations, switch tables) are
/// counted together under this name: theirs change from build to build.
const ANONYMOUS: &str = "(anonymous constants)";

/// How many of the symbols that shrank are listed.
const SHRINK_ROWS: usize = 5;

/// Sizes by symbol name.
pub type Sizes = BTreeMap<String, i64>;

/// Prints the `top` symbols that grew most from `base` to `with`, the total
/// growth of flash symbols, and the symbols that shrank most.
pub fn print_growth(base: &Path, with: &Path, top: usize) -> Result<(), String> {
    let (base, with) = (flash_symbols(base)?, flash_symbols(with)?);
    let rows = growth(&base, &with);
    let total: i64 = rows.iter().map(|(_, delta)| delta).sum();
    println!("largest growth by symbol ({NM_TOOL}; code and constants; total {total:+}):");
    for (name, delta) in rows.iter().take(top) {
        println!("{delta:>+8}  {name}");
    }
    // Inlining moves code between symbols (a function inlined whole in one
    // build is its own symbol in the other): the largest shrinks say where.
    let shrinks: Vec<_> = rows
        .iter()
        .rev()
        .take_while(|(_, d)| *d < 0)
        .take(SHRINK_ROWS)
        .collect();
    if !shrinks.is_empty() {
        println!("largest shrinks (code that moved into the symbols above, or went):");
        for (name, delta) in shrinks {
            println!("{delta:>+8}  {name}");
        }
    }
    Ok(())
}

fn flash_symbols(elf: &Path) -> Result<Sizes, String> {
    Ok(parse_nm(&nm(elf)?, FLASH_KINDS))
}

/// Sizes in static RAM by symbol name: `.bss` (`b`) and `.data` (`d`).
pub fn ram_symbols(elf: &Path) -> Result<Sizes, String> {
    Ok(parse_nm(&nm(elf)?, RAM_KINDS))
}

/// Symbol kinds in flash: code (`t`) and read-only data (`r`).
const FLASH_KINDS: &[&str] = &["t", "T", "r", "R"];
/// Symbol kinds in static RAM.
const RAM_KINDS: &[&str] = &["b", "B", "d", "D"];

fn nm(elf: &Path) -> Result<String, String> {
    cmd::ensure_program(NM_TOOL, NM_PACKAGE)?;
    cmd::stdout_of(
        Command::new(NM_TOOL)
            .args(["--size-sort", "-S", "-C"])
            .arg(elf),
    )
    .ok_or_else(|| format!("`{NM_TOOL} {}` failed", elf.display()))
}

/// Reads `nm -S` lines (`address size type name`), keeping the symbols of the
/// given kinds, summing the sizes of symbols that share a name.
fn parse_nm(out: &str, kinds: &[&str]) -> Sizes {
    let mut sizes = Sizes::new();
    for line in out.lines() {
        let mut fields = line.splitn(4, ' ');
        let (Some(_), Some(size), Some(kind), Some(name)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !kinds.contains(&kind) {
            continue;
        }
        let Ok(size) = i64::from_str_radix(size, 16) else {
            continue;
        };
        let name = if name.starts_with(".L") {
            ANONYMOUS
        } else {
            name
        };
        *sizes.entry(name.to_owned()).or_default() += size;
    }
    sizes
}

/// Each symbol whose size changed, with the change, largest growth first
/// (ties by name).
fn growth(base: &Sizes, with: &Sizes) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = base
        .keys()
        .chain(with.keys())
        .map(|name| {
            let size = |sizes: &Sizes| sizes.get(name).copied().unwrap_or(0);
            (name.clone(), size(with) - size(base))
        })
        .filter(|(_, delta)| *delta != 0)
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.dedup();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_code_and_constants_and_sums_names() {
        let out = "00000e50 0000385c t mps2_an386::app::Device::run\n\
                   0000d498 0000001c t <Reason as Wire>::write\n\
                   00014458 00000404 r .Lanon.01e6.671\n\
                   00014000 00000010 r .Lanon.02f4.42\n\
                   20000000 00000100 b MQ_STORAGE\n\
                   0000d498 00000004 t <Reason as Wire>::write\n\
                   garbage\n\
                   0000d498 zz t bad size\n";
        let sizes = parse_nm(out, FLASH_KINDS);
        assert_eq!(sizes.get("mps2_an386::app::Device::run"), Some(&0x385c));
        assert_eq!(sizes.get("<Reason as Wire>::write"), Some(&0x20));
        assert_eq!(sizes.get(ANONYMOUS), Some(&0x414));
        assert_eq!(sizes.get("MQ_STORAGE"), None);
        assert_eq!(sizes.len(), 3);
        let ram = parse_nm(out, RAM_KINDS);
        assert_eq!(ram.get("MQ_STORAGE"), Some(&0x100));
        assert_eq!(ram.len(), 1);
    }

    #[test]
    fn growth_is_signed_and_largest_first() {
        let sizes = |list: &[(&str, i64)]| -> Sizes {
            list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        let base = sizes(&[("gone", 10), ("same", 5), ("grew", 1)]);
        let with = sizes(&[("same", 5), ("grew", 4), ("new", 30)]);
        assert_eq!(
            growth(&base, &with),
            [
                ("new".to_owned(), 30),
                ("grew".to_owned(), 3),
                ("gone".to_owned(), -10)
            ]
        );
    }
}
