//! Test support for programs in other languages: the artifacts cargo built (the
//! C library), a real `mqd` ([`mq_testkit::Mqd`]), and compiling and running C
//! and C++ programs against the library. Shared by mq-ffi's tests and the
//! examples' (`#[path]`).
//!
//! The tests build the library themselves, once per test binary, with
//! [`mq_testkit::cargo_build`]: `cargo build -p mq-ffi --lib` into the target
//! directory and profile this test executable was built in. That works the same
//! under `cargo test -p mq-ffi`, `cargo test --workspace`, any
//! `CARGO_TARGET_DIR`, and `--release`; it costs a no-op cargo call when
//! everything is fresh, and it never runs stale artifacts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use mq_testkit::Mqd;

/// Where this test's cargo put its artifacts.
pub struct Artifacts {
    /// `<target>/<profile>`: holds `libmq_ffi.a` and the shared library.
    pub dir: PathBuf,
}

impl Artifacts {
    /// The static library (`libmq_ffi.a`).
    pub fn staticlib(&self) -> PathBuf {
        self.dir.join("libmq_ffi.a")
    }

    /// The shared library (`libmq_ffi.so` and the like).
    pub fn cdylib(&self) -> PathBuf {
        use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
        self.dir.join(format!("{DLL_PREFIX}mq_ffi{DLL_SUFFIX}"))
    }

    /// `mq-ffi/include` (from this crate or a sibling that includes this
    /// module, such as `examples`).
    pub fn include_dir(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../mq-ffi/include")
    }
}

/// Builds the library (once per test binary) and says where it is.
pub fn artifacts() -> &'static Artifacts {
    static BUILT: OnceLock<Artifacts> = OnceLock::new();
    BUILT.get_or_init(|| {
        mq_testkit::cargo_build(&["-p", "mq-ffi", "--lib"]);
        let built = Artifacts {
            dir: mq_testkit::artifact_dir().to_path_buf(),
        };
        for path in [built.staticlib(), built.cdylib()] {
            assert!(path.is_file(), "{} was not built", path.display());
        }
        built
    })
}

/// The token the test broker lets do anything.
pub const TOKEN: &str = "ffi-secret";
/// A token the test broker lets publish and subscribe under `open.>` only.
pub const NARROW_TOKEN: &str = "ffi-narrow";

/// A broker configuration with [`TOKEN`] and [`NARROW_TOKEN`], messages in memory.
pub const AUTH_CONFIG: &str = r#"
[store]
kind = "memory"

[[tokens]]
token = "ffi-secret"
publish = [">"]
subscribe = [">", "$dlq.>"]

[[tokens]]
token = "ffi-narrow"
publish = ["open.>"]
subscribe = ["open.>"]
"#;

/// The test broker's TLS: certificates made for it (rcgen), and the arguments
/// the C and C++ tests take after the plain ones.
pub struct Tls {
    pub dir: PathBuf,
    pub ca: mq_testkit::tls::TestCa,
    pub other_ca: mq_testkit::tls::TestCa,
    pub server: mq_testkit::tls::CertFiles,
    /// A client certificate for the identity [`TLS_IDENTITY`].
    pub device: mq_testkit::tls::CertFiles,
}

/// The identity of the test's client certificate: it may publish and
/// subscribe under `dev.{identity}.>` only.
pub const TLS_IDENTITY: &str = "ffi-device";

impl Tls {
    /// Certificates in a fresh directory of their own.
    pub fn new() -> Tls {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = scratch(&format!("tls-{n}"));
        let ca = mq_testkit::tls::TestCa::new(&dir, "ca");
        let other_ca = mq_testkit::tls::TestCa::new(&dir, "other");
        let server = ca.server("server", &["localhost", "127.0.0.1"]);
        let device = ca.client("device", TLS_IDENTITY);
        Tls {
            dir,
            ca,
            other_ca,
            server,
            device,
        }
    }

    /// [`AUTH_CONFIG`] with a TLS listener, client certificates optional, and
    /// [`TLS_IDENTITY`]'s permissions.
    pub fn config(&self) -> String {
        format!(
            "listen_tls = \"127.0.0.1:0\"\n{AUTH_CONFIG}\n[tls]\ncert = {:?}\nkey = {:?}\n\
             client_ca = {:?}\nrequire_client_cert = false\n\n[[identities]]\n\
             identity = \"{TLS_IDENTITY}\"\npublish = [\"dev.{{identity}}.>\"]\n\
             subscribe = [\"dev.{{identity}}.>\"]\n",
            self.server.cert, self.server.key, self.ca.cert
        )
    }

    /// TLS_ADDRESS CA CERT KEY OTHER_CA, for the C and C++ tests.
    pub fn args(&self, mqd: &Mqd) -> Vec<String> {
        let at = mqd
            .ready_addr("listen_tls")
            .expect("listen_tls in the ready file");
        let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
        vec![
            format!("localhost:{}", at.port()),
            path(&self.ca.cert),
            path(&self.device.cert),
            path(&self.device.key),
            path(&self.other_ca.cert),
        ]
    }
}

/// A broker configuration without tokens, messages in memory.
pub const OPEN_CONFIG: &str = "[store]\nkind = \"memory\"\n";

/// Runs a program to its end (bounded by `limit`), with its output captured.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("waiting works").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} ran longer than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Panics with the program's output unless it exited 0; returns its stdout.
pub fn expect_success(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A program from `PATH` (`gcc`, `g++`, `valgrind`): a clear failure when it is
/// missing (`cargo xtask ci` installs them).
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    assert!(
        found,
        "`{name}` is not on PATH: the C/C++ tests of mq-ffi need it \
         (`cargo xtask ci` installs gcc, g++ and valgrind with apt)"
    );
    Command::new(name)
}

/// What a program linked with the static library must add on this platform
/// (the native libraries Rust's standard library uses).
pub fn native_libs() -> &'static [&'static str] {
    if cfg!(windows) {
        &[
            "-lws2_32",
            "-lntdll",
            "-luserenv",
            "-lbcrypt",
            "-ladvapi32",
            "-lkernel32",
            // The peer's PostgreSQL client (through `whoami`).
            "-lsecur32",
        ]
    } else {
        &["-lpthread", "-ldl", "-lm"]
    }
}

/// Compiles `sources` with `compiler` (`gcc`/`g++`) and AddressSanitizer into
/// `out`, linked with the static library; panics with the compiler's output on
/// failure.
pub fn build_with_asan(compiler_name: &str, std: &str, sources: &[PathBuf], out: &Path) {
    let a = artifacts();
    let mut cmd = tool(compiler_name);
    cmd.arg(format!("-std={std}"))
        .args([
            "-g",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fno-omit-frame-pointer",
        ])
        .arg("-fsanitize=address,undefined")
        .arg("-fno-sanitize-recover=all")
        .arg("-I")
        .arg(a.include_dir())
        .args(sources)
        .arg(a.staticlib())
        .args(native_libs())
        .arg("-o")
        .arg(out);
    let built = run_bounded(&mut cmd, Duration::from_secs(300));
    expect_success(&format!("compiling {sources:?}"), &built);
}

/// Compiles `sources` plainly into `out`, linked with the shared library (found
/// at run time through an rpath), for running under valgrind, which sees the
/// Rust side's memory accesses too (AddressSanitizer instruments only C's).
pub fn build_shared(compiler_name: &str, std: &str, sources: &[PathBuf], out: &Path) {
    let a = artifacts();
    let mut cmd = tool(compiler_name);
    cmd.arg(format!("-std={std}"))
        .args(["-g", "-O1", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(a.include_dir())
        .args(sources)
        .arg("-L")
        .arg(&a.dir)
        .arg(format!("-Wl,-rpath,{}", a.dir.display()))
        .args(["-lmq_ffi", "-lpthread"])
        .arg("-o")
        .arg(out);
    let built = run_bounded(&mut cmd, Duration::from_secs(300));
    expect_success(&format!("compiling {sources:?}"), &built);
}

/// A fresh scratch directory for build outputs.
pub fn scratch(name: &str) -> PathBuf {
    let dir = artifacts().dir.join("mq-ffi-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}
