//! `mqd.exe` under Wine, driven from Linux: `mq.exe` publishes, a C
//! program linked against the Windows static library runs against it, and
//! what it acknowledged survives Ctrl-C, a restart and a crash.

use std::process::{Command, Stdio};

use super::{Built, MINGW_GCC, NATIVE_LIBS, TARGET, Wine, windows_path};
use crate::cmd::{self, Step, run};
use crate::mq_tools::{self, MqTools};
use crate::testbins::tail;

/// The C example linked against the Windows static library, and what it prints.
const C_EXAMPLE: &str = "examples/c/one_to_one.c";
const C_EXAMPLE_PRINTS: &[&str] = &[
    "received: order 1",
    "received: order 2",
    "received: order 3",
];

/// `mqd.exe` on a loopback port with its log, driven from Linux (see the
/// module docs).
pub(super) fn run_daemon(wine: &Wine, built: &Built) -> Result<(), String> {
    let step = Step::start("windows: mqd.exe, mq.exe and a C program under Wine");
    let tools = MqTools {
        mqd: built.mqd.clone(),
        mq: built.mq.clone(),
        runner: Some(wine.runner()),
    };
    let mut mqd = mq_tools::Mqd::start(tools, "windows")?;
    println!(
        "mqd.exe listens on {} (data in {})",
        mqd.server.addr,
        mqd.server.dir.join("data").display()
    );
    let result = drive_daemon(wine, built, &mut mqd);
    if result.is_err() {
        eprintln!("mqd.exe's log:\n{}", tail(&mqd.server.log(), 40));
    }
    println!("    {}", cmd::format_duration(step.elapsed()));
    result
}

const TOPIC: &str = "windows.smoke";

fn drive_daemon(wine: &Wine, built: &Built, mqd: &mut mq_tools::Mqd) -> Result<(), String> {
    let payloads: Vec<String> = (1..=3).map(|n| format!("m{n}")).collect();
    mq_tools::wait_for("mq.exe pub --qos 1", mqd.publish(TOPIC, &payloads)?)?;
    expect_replay(mqd, &payloads, "published by mq.exe")?;

    c_example(wine, built, mqd.server.addr)?;

    let status = mqd.server.interrupt();
    let log = mqd.server.log();
    if !status.success() || !log.contains("stopping signal=\"Ctrl-C\"") || !log.contains("stopped")
    {
        return Err(format!(
            "Ctrl-C (SIGINT to the Wine process) did not stop mqd.exe gracefully ({status})"
        ));
    }
    println!("Ctrl-C: mqd.exe stopped gracefully ({status})");

    mqd.server.try_restart()?;
    expect_replay(mqd, &payloads, "after the graceful stop and a restart")?;
    mqd.server.kill();
    mqd.server.try_restart()?;
    expect_replay(
        mqd,
        &payloads,
        "after a crash (TerminateProcess) and a restart",
    )?;
    Ok(())
}

/// `mq.exe sub --from 0` replays exactly `payloads` on [`TOPIC`].
fn expect_replay(mqd: &mq_tools::Mqd, payloads: &[String], when: &str) -> Result<(), String> {
    let seen = mqd.replay(TOPIC, |seen| seen.len() >= payloads.len())?;
    let got: Vec<&str> = seen.iter().map(|(_, p)| p.as_str()).collect();
    if got != payloads {
        return Err(format!(
            "{when}: mq.exe replayed {got:?}, expected {payloads:?}"
        ));
    }
    println!("{when}: mq.exe replays {got:?}");
    Ok(())
}

/// Links [`C_EXAMPLE`] against the Windows static library with MinGW-w64 and
/// runs it under Wine against `mqd.exe`.
fn c_example(wine: &Wine, built: &Built, addr: std::net::SocketAddr) -> Result<(), String> {
    let root = cmd::workspace_root();
    let exe = cmd::target_dir().join(TARGET).join("one_to_one.exe");
    run(Command::new(MINGW_GCC)
        .current_dir(&root)
        .args([
            "-std=c11",
            "-Wall",
            "-Werror",
            "-Imq-ffi/include",
            C_EXAMPLE,
        ])
        .arg(&built.static_lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe))?;
    let mut command = wine.command();
    command.arg(windows_path(&exe)).arg(addr.to_string());
    println!("$ {}", cmd::display(&command));
    // Both pipes read at once (`output`): one read to its end first could
    // leave the example blocked on the other.
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start the C example: {e}"))?;
    let (status, stdout) = (out.status, String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    let missing: Vec<&&str> = C_EXAMPLE_PRINTS
        .iter()
        .filter(|line| !stdout.lines().any(|l| l.trim_end() == **line))
        .collect();
    if !status.success() || !missing.is_empty() {
        return Err(format!(
            "{C_EXAMPLE} under Wine ({status}) did not print {missing:?}: {}",
            stderr.trim()
        ));
    }
    println!("{C_EXAMPLE}, linked against libmq_ffi.a for Windows: ok");
    Ok(())
}
