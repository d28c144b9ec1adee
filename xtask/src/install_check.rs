//! The CI step for `cargo xtask install`: install into a temporary prefix,
//! then use it the two ways a C or C++ project would, each program run against
//! a real `mqd` and checked against the example's expected output:
//!
//! - pkg-config: `examples/c/one_to_one.c` built with exactly
//!   `pkg-config --cflags --libs mq` (so, with the shared library, which the
//!   program must name by its soname), run with the prefix's `lib` on
//!   `LD_LIBRARY_PATH`; and the version and the static libraries' extras
//!   pkg-config reports;
//! - CMake: `examples/cmake` (`find_package(mq 0.1)`: C with `mq::mq`, C++
//!   with `mq::mq_static`) configured with the prefix, built and run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd::{self, cargo, output_within, run};
use crate::install::{self, Names, STATIC_LIBS};

/// How long compiling, configuring or running one program may take.
const LIMIT: Duration = Duration::from_secs(300);

/// The programs the step uses, each with its Debian package.
const TOOLS: &[(&str, &str)] = &[
    ("pkg-config", "pkg-config"),
    ("cmake", "cmake"),
    ("make", "make"),
    ("gcc", "gcc"),
    ("readelf", "binutils"),
];

/// See the module docs.
pub fn check() -> Result<(), String> {
    for (program, package) in TOOLS {
        if !cmd::on_path(program) {
            println!("checking the C/C++ install with pkg-config and CMake needs {program}");
        }
        cmd::ensure_program(program, package)?;
    }
    run(cargo().args(["build", "-p", "mq-cli", "--bin", "mqd"]))?;
    let mqd = cmd::target_dir()
        .join("debug")
        .join(format!("mqd{}", std::env::consts::EXE_SUFFIX));
    let scratch = std::env::temp_dir().join(format!("mq-install-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let prefix = scratch.join("prefix");
    println!("installing into {}", prefix.display());
    for file in install::install(&prefix)? {
        println!("    {}", file.display());
    }
    let names = Names::workspace();
    with_pkg_config(&prefix, &scratch, &names, &mqd)?;
    with_cmake(&prefix, &scratch, &mqd)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn with_pkg_config(prefix: &Path, scratch: &Path, names: &Names, mqd: &Path) -> Result<(), String> {
    let pkg_config = |args: &[&str]| -> Result<String, String> {
        let out = output_within(
            Command::new("pkg-config")
                .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
                .args(args)
                .arg("mq"),
            LIMIT,
        )?;
        Ok(out.trim().to_owned())
    };
    let version = pkg_config(&["--modversion"])?;
    if version != names.version {
        return Err(format!(
            "pkg-config says mq {version}, not {}",
            names.version
        ));
    }
    let static_libs = pkg_config(&["--static", "--libs"])?;
    if !static_libs.ends_with(&STATIC_LIBS.join(" ")) {
        return Err(format!(
            "`pkg-config --static --libs mq` is `{static_libs}`: without {}",
            STATIC_LIBS.join(" ")
        ));
    }
    let flags = pkg_config(&["--cflags", "--libs"])?;
    let program = scratch.join("one_to_one_pkg_config");
    output_within(
        Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg(examples().join("c/one_to_one.c"))
            .args(flags.split_whitespace())
            .arg("-o")
            .arg(&program),
        LIMIT,
    )?;
    names_library(&program, Some(&names.soname))?;
    let mut cmd = Command::new(&program);
    cmd.env("LD_LIBRARY_PATH", prefix.join("lib"));
    run_example(cmd, mqd)
}

fn with_cmake(prefix: &Path, scratch: &Path, mqd: &Path) -> Result<(), String> {
    let build = scratch.join("cmake-build");
    output_within(
        Command::new("cmake")
            .arg("-S")
            .arg(examples().join("cmake"))
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())),
        LIMIT,
    )?;
    output_within(Command::new("cmake").arg("--build").arg(&build), LIMIT)?;
    // mq::mq's program finds the library through the rpath CMake gave it;
    // mq::mq_static's has it inside.
    let names = Names::workspace();
    for (program, soname) in [
        ("one_to_one_c", Some(names.soname.as_str())),
        ("one_to_one_cpp", None),
    ] {
        let program = build.join(program);
        names_library(&program, soname)?;
        run_example(Command::new(program), mqd)?;
    }
    Ok(())
}

/// Checks that `program` needs mq-ffi's shared library by `soname`, or, with
/// `None`, that it does not need it at all (linked with the static library).
fn names_library(program: &Path, soname: Option<&str>) -> Result<(), String> {
    let dynamic = output_within(Command::new("readelf").arg("-d").arg(program), LIMIT)?;
    let needs = |name: &str| dynamic.contains(&format!("Shared library: [{name}"));
    let right = match soname {
        Some(soname) => needs(&format!("{soname}]")),
        None => !needs("libmq_ffi"),
    };
    if right {
        return Ok(());
    }
    Err(format!(
        "{} should {}; its dynamic section:\n{dynamic}",
        program.display(),
        match soname {
            Some(soname) => format!("need {soname}"),
            None => "not need libmq_ffi (static)".to_owned(),
        }
    ))
}

/// Runs an example of the one-to-one pattern against a fresh `mqd` and
/// compares what it printed with `examples/expected/one-to-one.txt`.
fn run_example(mut program: Command, mqd: &Path) -> Result<(), String> {
    let expected = std::fs::read_to_string(examples().join("expected/one-to-one.txt"))
        .map_err(|e| format!("examples/expected/one-to-one.txt: {e}"))?;
    let server = mq_testkit::Mqd::builder("[store]\nkind = \"memory\"\n")
        .binary(mqd)
        .try_start()?;
    let printed = output_within(program.arg(server.addr.to_string()), LIMIT)?;
    if printed != expected {
        return Err(format!(
            "{} printed\n{printed}\ninstead of\n{expected}",
            program.get_program().to_string_lossy()
        ));
    }
    println!("    printed what examples/expected/one-to-one.txt says");
    Ok(())
}

fn examples() -> PathBuf {
    cmd::workspace_root().join("examples")
}
