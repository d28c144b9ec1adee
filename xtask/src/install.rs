//! `cargo xtask install --prefix DIR`: mq-ffi for C and C++ programs, in the
//! layout pkg-config and CMake look in (Linux):
//!
//! | file | what |
//! | --- | --- |
//! | `include/mq.h`, `include/mq.hpp` | the C header, the C++17 wrapper |
//! | `lib/libmq_ffi.a` | the static library |
//! | `lib/libmq_ffi.so.0.1.0` | the shared library, soname `libmq_ffi.so.0.1` |
//! | `lib/libmq_ffi.so.0.1`, `lib/libmq_ffi.so` | links to it: run time, link time |
//! | `lib/pkgconfig/mq.pc` | `pkg-config --cflags --libs mq` |
//! | `lib/cmake/mq/mqConfig.cmake`, `mqConfigVersion.cmake` | `find_package(mq)`: `mq::mq`, `mq::mq_static` |
//!
//! The version is the workspace's. Before 1.0 the soname carries the minor
//! version too, since Cargo's semver lets 0.x releases break at a minor
//! version (1.2.3 would be `libmq_ffi.so.1`); the CMake version file says
//! the same. The libraries are a release build; the soname is given to the
//! linker for this build only (`cargo rustc`), so the libraries in `target/`,
//! which the tests link against in place, keep having none.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd::{self, cargo, run};
use crate::failure::Failure;

pub const USAGE: &str = "\
usage: cargo xtask install --prefix DIR

Builds mq-ffi (release) and installs, under DIR: include/mq.h and mq.hpp,
lib/libmq_ffi.a, lib/libmq_ffi.so (versioned, with a soname),
lib/pkgconfig/mq.pc and lib/cmake/mq/ (find_package(mq): mq::mq, mq::mq_static).";

/// The native libraries a program linked with `libmq_ffi.a` needs (Rust's
/// standard library's), as mq-ffi's tests link them (`native_libs` in
/// `mq-ffi/tests/support`).
pub const STATIC_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm"];

/// The names of what is installed, from the workspace's version.
pub struct Names {
    /// `0.1.0`
    pub version: String,
    /// `libmq_ffi.so.0.1`
    pub soname: String,
    /// `libmq_ffi.so.0.1.0`: the file itself.
    pub real: String,
}

impl Names {
    pub fn of(version: &str) -> Names {
        let mut parts = version.split(['.', '-', '+']);
        let major = parts.next().unwrap_or("0");
        let minor = parts.next().unwrap_or("0");
        let soname = if major == "0" {
            format!("libmq_ffi.so.0.{minor}")
        } else {
            format!("libmq_ffi.so.{major}")
        };
        Names {
            version: version.to_owned(),
            real: format!("libmq_ffi.so.{version}"),
            soname,
        }
    }

    /// mq-ffi's: `version.workspace = true`, as this crate's.
    pub fn workspace() -> Names {
        Names::of(env!("CARGO_PKG_VERSION"))
    }
}

pub fn run_install(args: &[String]) -> Result<(), Failure> {
    let prefix = match args {
        [flag, dir] if flag == "--prefix" => dir.clone(),
        [arg] if arg.starts_with("--prefix=") => arg["--prefix=".len()..].to_owned(),
        [help] if help == "-h" || help == "--help" => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => return Err(Failure::Usage("`install` takes `--prefix DIR`".to_owned())),
    };
    let prefix = std::path::absolute(&prefix)
        .map_err(|e| Failure::Failed(format!("the prefix {prefix}: {e}")))?;
    for file in install(&prefix).map_err(Failure::Failed)? {
        println!("    {}", file.display());
    }
    Ok(())
}

/// Builds mq-ffi's libraries and installs everything under `prefix` (which
/// must be absolute); returns the files and links made.
pub fn install(prefix: &Path) -> Result<Vec<PathBuf>, String> {
    if !cfg!(target_os = "linux") {
        return Err("`cargo xtask install` knows Linux's library names only".to_owned());
    }
    let text = prefix.to_str().ok_or("the prefix is not UTF-8")?;
    if text.contains(char::is_whitespace) {
        // pkg-config's variables cannot hold it.
        return Err(format!(
            "the prefix `{text}` has white space: choose another"
        ));
    }
    let names = Names::workspace();
    run(cargo()
        .args([
            "rustc",
            "--release",
            "-p",
            "mq-ffi",
            "--lib",
            "--crate-type",
            "cdylib,staticlib",
            "--",
            "-C",
        ])
        .arg(format!("link-arg=-Wl,-soname,{}", names.soname)))?;
    let built = cmd::target_dir().join("release");
    let headers = cmd::workspace_root().join("mq-ffi/include");
    let include = prefix.join("include");
    let lib = prefix.join("lib");
    let cmake = lib.join("cmake/mq");
    let mut made = Vec::new();
    let mut copy = |from: PathBuf, to: PathBuf| -> Result<(), String> {
        make_parent(&to)?;
        fs::copy(&from, &to)
            .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
        made.push(to);
        Ok(())
    };
    copy(headers.join("mq.h"), include.join("mq.h"))?;
    copy(headers.join("mq.hpp"), include.join("mq.hpp"))?;
    copy(built.join("libmq_ffi.a"), lib.join("libmq_ffi.a"))?;
    copy(built.join("libmq_ffi.so"), lib.join(&names.real))?;
    for (link, to) in [
        (&names.soname, &names.real),
        (&"libmq_ffi.so".to_owned(), &names.soname),
    ] {
        symlink(to, &lib.join(link))?;
        made.push(lib.join(link));
    }
    for (path, text) in [
        (lib.join("pkgconfig/mq.pc"), pkg_config(prefix, &names)),
        (cmake.join("mqConfig.cmake"), cmake_config(&names)),
        (cmake.join("mqConfigVersion.cmake"), cmake_version(&names)),
    ] {
        make_parent(&path)?;
        fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        made.push(path);
    }
    Ok(made)
}

fn make_parent(path: &Path) -> Result<(), String> {
    let dir = path.parent().ok_or("a file has a directory")?;
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// `link` -> `target` (a name in the same directory), replacing what was there.
fn symlink(target: &str, link: &Path) -> Result<(), String> {
    let _ = fs::remove_file(link);
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(target, link);
    #[cfg(not(unix))]
    let made = fs::copy(link.with_file_name(target), link).map(drop);
    made.map_err(|e| format!("linking {} to {target}: {e}", link.display()))
}

/// `lib/pkgconfig/mq.pc`.
fn pkg_config(prefix: &Path, names: &Names) -> String {
    format!(
        "\
# mq-ffi, the C ABI of the mq message broker's client, and its C++17 wrapper.
# Written by `cargo xtask install`. Linking with the static library
# (pkg-config --static) needs the libraries in Libs.private.
prefix={prefix}
exec_prefix=${{prefix}}
libdir=${{exec_prefix}}/lib
includedir=${{prefix}}/include

Name: mq
Description: Client of the mq message broker: C ABI (mq.h), C++17 wrapper (mq.hpp)
Version: {version}
Libs: -L${{libdir}} -lmq_ffi
Libs.private: {private}
Cflags: -I${{includedir}}
",
        prefix = prefix.display(),
        version = names.version,
        private = STATIC_LIBS.join(" "),
    )
}

/// `lib/cmake/mq/mqConfig.cmake`: the imported targets, found from the
/// file's own place (the prefix may move).
fn cmake_config(names: &Names) -> String {
    let libs: Vec<String> = STATIC_LIBS
        .iter()
        .map(|l| match l.trim_start_matches("-l") {
            "pthread" => "Threads::Threads".to_owned(),
            "dl" => "${CMAKE_DL_LIBS}".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    format!(
        r#"# mq-ffi, the C ABI of the mq message broker's client, and its C++17 wrapper.
# Written by `cargo xtask install`.
#
#   find_package(mq {minor} REQUIRED)
#   target_link_libraries(app PRIVATE mq::mq)         # libmq_ffi.so
#   target_link_libraries(app PRIVATE mq::mq_static)  # libmq_ffi.a
#
# Both carry the include directory (mq.h, mq.hpp).

get_filename_component(_mq_prefix "${{CMAKE_CURRENT_LIST_DIR}}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(NOT TARGET mq::mq)
  add_library(mq::mq SHARED IMPORTED)
  set_target_properties(mq::mq PROPERTIES
    IMPORTED_LOCATION "${{_mq_prefix}}/lib/{real}"
    IMPORTED_SONAME "{soname}"
    INTERFACE_INCLUDE_DIRECTORIES "${{_mq_prefix}}/include")
endif()

if(NOT TARGET mq::mq_static)
  add_library(mq::mq_static STATIC IMPORTED)
  set_target_properties(mq::mq_static PROPERTIES
    IMPORTED_LOCATION "${{_mq_prefix}}/lib/libmq_ffi.a"
    INTERFACE_INCLUDE_DIRECTORIES "${{_mq_prefix}}/include"
    INTERFACE_LINK_LIBRARIES "{libs}")
endif()

unset(_mq_prefix)
"#,
        minor = minor_version(&names.version),
        real = names.real,
        soname = names.soname,
        libs = libs.join(";"),
    )
}

/// `lib/cmake/mq/mqConfigVersion.cmake`: which requested versions this one
/// satisfies (the soname's rule: the same major version, and before 1.0 the
/// same minor one), and only for 64-bit builds.
fn cmake_version(names: &Names) -> String {
    let mut parts = names.version.split('.');
    let major = parts.next().unwrap_or("0");
    let minor = parts.next().unwrap_or("0");
    let mut same = format!("PACKAGE_FIND_VERSION_MAJOR EQUAL {major}");
    if major == "0" {
        let _ = write!(same, " AND PACKAGE_FIND_VERSION_MINOR EQUAL {minor}");
    }
    format!(
        r#"# The version of mq for find_package(mq VERSION). Written by `cargo xtask install`.
set(PACKAGE_VERSION "{version}")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
if(NOT PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION AND {same})
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_VERSION VERSION_EQUAL PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P EQUAL {pointer})
  set(PACKAGE_VERSION "${{PACKAGE_VERSION}} ({bits}-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
"#,
        version = names.version,
        pointer = size_of::<usize>(),
        bits = usize::BITS,
    )
}

/// `0.1.0` -> `0.1`.
fn minor_version(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_1_0_the_soname_has_the_minor_version() {
        let names = Names::of("0.1.0");
        assert_eq!(names.soname, "libmq_ffi.so.0.1");
        assert_eq!(names.real, "libmq_ffi.so.0.1.0");
        assert_eq!(Names::of("1.2.3").soname, "libmq_ffi.so.1");
        assert_eq!(minor_version("0.1.0"), "0.1");
    }

    #[test]
    fn the_static_library_brings_its_native_libraries() {
        let names = Names::of("0.1.0");
        let pc = pkg_config(Path::new("/opt/mq"), &names);
        assert!(pc.contains("\nprefix=/opt/mq\n"), "{pc}");
        assert!(pc.contains("\nLibs.private: -lpthread -ldl -lm\n"), "{pc}");
        let config = cmake_config(&names);
        assert!(
            config.contains(r#"INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m""#),
            "{config}"
        );
        let version = cmake_version(&names);
        assert!(
            version.contains(
                "PACKAGE_FIND_VERSION_MAJOR EQUAL 0 AND PACKAGE_FIND_VERSION_MINOR EQUAL 1"
            ),
            "{version}"
        );
    }
}
