//! `cargo xtask ffi-python` (a step of `cargo xtask ci`): the Python package
//! in `mq-ffi/python`, installed as a user installs it and tested that way.
//!
//! maturin builds a wheel that carries mq-ffi's shared library (see the
//! package's `pyproject.toml`). The package goes into a fresh venv twice: once
//! from that wheel (`maturin build`), once from its directory (`pip install
//! mq-ffi/python`, which builds it through maturin in pip's own build
//! environment). Each time the package's tests run against a real `mqd` from a
//! directory outside the checkout, with neither `MQ_LIB` nor
//! `CARGO_TARGET_DIR` set: the library can only come from the wheel, and a
//! test checks that it did.
//!
//! maturin and cffi for `maturin build` live in a venv of their own under the
//! target directory, kept from run to run; cargo's builds are reused too, so a
//! run without changes costs two venvs and two `pip install`s.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, cargo, run, succeeds};

/// What building the package needs: `[build-system] requires` of
/// `mq-ffi/python/pyproject.toml`, which a test keeps equal to this. The
/// tools venv has them for `maturin build`; pip fetches them itself for a
/// source install.
const BUILD_REQUIRES: &[&str] = &["maturin>=1.9,<2", "cffi>=1.15"];

/// Runs the package's tests on a wheel and on a source install (module docs).
pub fn python_tests() -> Result<(), String> {
    run(cargo().args(["build", "-p", "mq-cli", "--bin", "mqd"]))?;
    let mqd = cmd::target_dir()
        .join("debug")
        .join(format!("mqd{}", std::env::consts::EXE_SUFFIX));
    let wheel = build_wheel(&tools_venv()?)?;
    let package = package_dir();
    for (how, source) in [("wheel", &wheel), ("source", &package)] {
        let venv = cmd::target_dir().join(format!("mq-ffi-venv-{how}"));
        println!("installing {} into a fresh venv", source.display());
        make_venv(&venv)?;
        let mut install = pip(&venv);
        if how == "source" {
            println!("    (pip builds mq-ffi in release through maturin: slow the first time)");
            // cargo's builds, reused.
            install.env("CARGO_TARGET_DIR", cmd::target_dir());
        }
        // trustme makes the TLS tests' CA and certificates.
        run(install.args(["pytest", "trustme"]).arg(source))?;
        run_tests(&venv, &mqd)?;
    }
    Ok(())
}

/// `mq-ffi/python`: the package's sources, `pyproject.toml` and tests.
fn package_dir() -> PathBuf {
    cmd::workspace_root().join("mq-ffi/python")
}

/// The venv with [`BUILD_REQUIRES`], made once and kept.
fn tools_venv() -> Result<PathBuf, String> {
    let venv = cmd::target_dir().join("mq-ffi-maturin-venv");
    let python = venv_python(&venv);
    if !python.is_file() || !succeeds(Command::new(&python).args(["-m", "pip", "--version"])) {
        make_venv(&venv)?;
    }
    // Does nothing (and asks no index) once they are there.
    run(pip(&venv).args(BUILD_REQUIRES))?;
    Ok(venv)
}

/// `maturin build --release` into an empty directory; the wheel it made,
/// after listing what it holds.
fn build_wheel(tools: &Path) -> Result<PathBuf, String> {
    let out = cmd::target_dir().join("mq-ffi-wheels");
    let _ = std::fs::remove_dir_all(&out);
    let python = venv_python(tools);
    run(Command::new(&python)
        .current_dir(package_dir())
        .env("CARGO_TARGET_DIR", cmd::target_dir())
        .args(["-m", "maturin", "build", "--release", "--interpreter"])
        .arg(&python)
        .arg("--out")
        .arg(&out))?;
    let wheels: Vec<PathBuf> = std::fs::read_dir(&out)
        .map_err(|e| format!("reading {}: {e}", out.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    let [wheel] = &wheels[..] else {
        return Err(format!(
            "maturin build made {} wheels in {}, expected one",
            wheels.len(),
            out.display()
        ));
    };
    run(Command::new(&python)
        .args(["-m", "zipfile", "-l"])
        .arg(wheel))?;
    Ok(wheel.clone())
}

/// The package's tests with the venv's Python, from an empty directory
/// outside the checkout and with nothing pointing at a library.
fn run_tests(venv: &Path, mqd: &Path) -> Result<(), String> {
    let outside = std::env::temp_dir().join(format!("mq-ffi-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&outside)
        .map_err(|e| format!("creating {}: {e}", outside.display()))?;
    println!(
        "the tests, from {} without MQ_LIB, CARGO_TARGET_DIR or PYTHONPATH:",
        outside.display()
    );
    let result = run(Command::new(venv_python(venv))
        .current_dir(&outside)
        .env_remove("MQ_LIB")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("PYTHONPATH")
        .env("MQD", mqd)
        // Enables the test that the library is the one in the package.
        .env("MQ_TEST_INSTALLED", "1")
        // Nothing written into the checkout's tests directory.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-v"])
        .arg(package_dir().join("tests")));
    let _ = std::fs::remove_dir_all(&outside);
    result
}

/// `python -m pip install --quiet` of the venv, arguments to follow.
fn pip(venv: &Path) -> Command {
    let mut pip = Command::new(venv_python(venv));
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    pip
}

pub(crate) fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python3")
    }
}

/// A venv under the target directory named `name` with `requirement`
/// installed from PyPI (present once `import module` works); its python.
/// `fresh`: made anew every time (as a new user's would be), else kept from
/// run to run.
pub(crate) fn venv_with(
    name: &str,
    module: &str,
    requirement: &str,
    fresh: bool,
) -> Result<PathBuf, String> {
    let venv = cmd::target_dir().join(name);
    let python = venv_python(&venv);
    if fresh
        || !python.is_file()
        || !succeeds(Command::new(&python).args(["-m", "pip", "--version"]))
    {
        make_venv(&venv)?;
    }
    if !succeeds(Command::new(&python).args(["-c", &format!("import {module}")])) {
        println!("installing {requirement} into {}", venv.display());
        run(pip(&venv).arg(requirement))?;
    }
    Ok(python)
}

/// Makes a new venv (removing what was there) with `python3 -m venv`,
/// installing Debian's python3-venv when that is missing.
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
    fn the_build_requirements_are_those_of_pyproject() {
        let pyproject = std::fs::read_to_string(package_dir().join("pyproject.toml"))
            .expect("mq-ffi/python/pyproject.toml");
        let quoted: Vec<String> = BUILD_REQUIRES.iter().map(|r| format!("\"{r}\"")).collect();
        let line = format!("requires = [{}]", quoted.join(", "));
        assert!(
            pyproject.lines().any(|l| l.trim() == line),
            "pyproject.toml's [build-system] should say `{line}`"
        );
    }
}
