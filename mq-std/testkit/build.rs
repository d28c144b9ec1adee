//! Tells the harness the target triple it is compiled for: a test built with
//! `--target T` runs from `<target>/T/<profile>/deps`, and `mqd` must be built
//! the same way.

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=MQ_TESTKIT_TARGET={target}");
}
