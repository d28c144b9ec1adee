//! mq-ffi's tasks: `cargo xtask codegen` (the C header, by cbindgen) and the CI
//! steps that check the header is fresh, install the tools the C/C++ tests
//! need, and run the Python package's tests in a venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, cargo, run, succeeds};
use crate::failure::Failure;

/// Where the header goes, relative to the workspace root.
const HEADER: &str = "mq-ffi/include/mq.h";

/// The programs the tests of mq-ffi and the examples use (`cargo test`), each
/// with its Debian package (gcc's AddressSanitizer runtime comes with gcc).
const TEST_TOOLS: &[(&str, &str)] = &[
    ("gcc", "gcc"),
    ("g++", "g++"),
    ("valgrind", "valgrind"),
    ("python3", "python3"),
];

/// `cargo xtask codegen [--check]`: writes the C header from mq-ffi's source,
/// or with `--check` only fails when the committed one is stale (as CI does).
pub fn run_codegen(args: &[String]) -> Result<(), Failure> {
    match args {
        [] => {}
        [check] if check == "--check" => return header_fresh().map_err(Failure::Failed),
        [arg, ..] => {
            return Err(Failure::Usage(format!(
                "`codegen` takes only `--check`, got `{arg}`"
            )));
        }
    }
    let header = generate_header().map_err(Failure::Failed)?;
    let path = cmd::workspace_root().join(HEADER);
    let old = std::fs::read(&path).unwrap_or_default();
    if old == header {
        println!("{HEADER}: up to date");
        return Ok(());
    }
    std::fs::write(&path, &header)
        .map_err(|e| Failure::Failed(format!("writing {}: {e}", path.display())))?;
    println!("{HEADER}: written ({} bytes)", header.len());
    Ok(())
}

/// The header cbindgen makes from mq-ffi's source and `cbindgen.toml`.
fn generate_header() -> Result<Vec<u8>, String> {
    let dir = cmd::workspace_root().join("mq-ffi");
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .map_err(|e| format!("reading mq-ffi/cbindgen.toml: {e}"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .map_err(|e| format!("cbindgen failed on mq-ffi: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    Ok(out)
}

/// CI: the committed header is what the source generates.
pub fn header_fresh() -> Result<(), String> {
    let fresh = generate_header()?;
    let path = cmd::workspace_root().join(HEADER);
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed == fresh {
        println!("{HEADER}: matches the source");
        return Ok(());
    }
    let first = first_difference(&committed, &fresh);
    Err(format!(
        "{HEADER} is stale (it differs from a fresh generation from line {first}): \
         run `cargo xtask codegen` and commit the header"
    ))
}

/// The 1-based number of the first line where `a` and `b` differ.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    1 + a[..same].iter().filter(|&&c| c == b'\n').count()
}

/// CI: the programs of [`TEST_TOOLS`], installed with apt when missing.
pub fn test_tools() -> Result<(), String> {
    let missing: Vec<&str> = TEST_TOOLS
        .iter()
        .filter(|(program, _)| !cmd::on_path(program))
        .map(|&(_, package)| package)
        .collect();
    if missing.is_empty() {
        println!("gcc, g++, valgrind and python3: present");
        return Ok(());
    }
    println!(
        "the tests of mq-ffi and the examples need {}: installing them",
        missing.join(", ")
    );
    cmd::ensure_apt(&missing)?;
    match TEST_TOOLS
        .iter()
        .find(|(program, _)| !cmd::on_path(program))
    {
        Some((program, _)) => Err(format!("{program} is still missing after installing it")),
        None => Ok(()),
    }
}

/// CI: builds the shared library and `mqd`, makes a venv under the target dir,
/// installs pytest and the package into it, and runs the package's tests.
pub fn python_tests() -> Result<(), String> {
    run(cargo().args([
        "build", "-p", "mq-ffi", "-p", "mq-cli", "--lib", "--bin", "mqd",
    ]))?;
    let venv = cmd::target_dir().join("mq-ffi-venv");
    let python = venv_python(&venv);
    if !python.is_file() || !succeeds(Command::new(&python).args(["-m", "pip", "--version"])) {
        make_venv(&venv)?;
    }
    let package = cmd::workspace_root().join("mq-ffi/python");
    println!(
        "installing pytest and the mq package into {}",
        venv.display()
    );
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "pytest",
    ]))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--force-reinstall",
            "--no-deps",
        ])
        .arg(&package))?;
    let debug = cmd::target_dir().join("debug");
    // From the tests' own directory, so that `import mq` finds the installed
    // package and not the source next to it.
    run(Command::new(&python)
        .current_dir(package.join("tests"))
        .env("MQ_LIB", debug.join(shared_library()))
        .env(
            "MQD",
            debug.join(format!("mqd{}", std::env::consts::EXE_SUFFIX)),
        )
        .env("MQ_TEST_INSTALLED", "1")
        .args(["-m", "pytest", "-v", "."]))
}

/// The file name of mq-ffi's shared library on this platform.
fn shared_library() -> String {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    format!("{DLL_PREFIX}mq_ffi{DLL_SUFFIX}")
}

pub(crate) fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python3")
    }
}

/// Makes the venv with `python3 -m venv`, installing Debian's python3-venv when
/// that is missing.
pub(crate) fn make_venv(venv: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(venv);
    let python = if cmd::on_path("python3") {
        "python3"
    } else {
        println!("the Python tests of mq-ffi need python3: installing it");
        cmd::ensure_apt(&["python3", "python3-venv"])?;
        "/usr/bin/python3"
    };
    if run(Command::new(python).arg("-m").arg("venv").arg(venv)).is_ok() {
        return Ok(());
    }
    println!(
        "`{python} -m venv` failed: installing Debian's python3-venv and using /usr/bin/python3"
    );
    let _ = std::fs::remove_dir_all(venv);
    cmd::ensure_apt(&["python3", "python3-venv"])?;
    run(Command::new("/usr/bin/python3")
        .arg("-m")
        .arg("venv")
        .arg(venv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_line() {
        assert_eq!(first_difference(b"a\nb\nc\n", b"a\nb\nc\n"), 4);
        assert_eq!(first_difference(b"a\nb\nc\n", b"a\nx\nc\n"), 2);
        assert_eq!(first_difference(b"", b"a"), 1);
    }
}
