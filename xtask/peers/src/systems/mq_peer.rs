//! mq's desktop peers: `mq-peer-load` (the program of `xtask/peers/mesh`,
//! built next to this one) runs the peers, their clients and the workload in
//! a child process and prints the result; its CPU time is the clients'.

use std::path::PathBuf;
use std::process::Command;

use crate::Ctx;
use crate::measure::Measured;
use crate::workload::{Kind, Shape, Workload};

/// The program, from `--mq-peer-load` or next to this one.
fn program(ctx: &Ctx) -> Result<PathBuf, String> {
    if let Some(p) = &ctx.mq_peer_load {
        return Ok(p.clone());
    }
    let me = std::env::current_exe().map_err(|e| format!("where this program is: {e}"))?;
    let p = me.with_file_name(format!("mq-peer-load{}", std::env::consts::EXE_SUFFIX));
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "no {} (build xtask/peers/mesh, or give --mq-peer-load)",
            p.display()
        ))
    }
}

/// Its version line, checking it runs.
pub fn version(ctx: &Ctx) -> Result<Vec<(String, String)>, String> {
    let p = program(ctx)?;
    Ok(vec![(
        "mq peers (mq-peer-load, mq_std::peer)".to_string(),
        format!("this commit ({})", p.display()),
    )])
}

pub async fn run(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    let shape = match w.kind {
        Kind::Peer(Shape::One) => "one".to_string(),
        Kind::Peer(Shape::FanOut(n)) => format!("fanout:{n}"),
        Kind::Cycles(per) => format!("cycles:{per}"),
        _ => return Err("mq-peer runs the peer-to-peer workloads only".to_string()),
    };
    let dir = std::env::temp_dir().join(ctx.name(&format!("peers{}", w.id)));
    let mut cmd = Command::new(program(ctx)?);
    cmd.arg("--shape")
        .arg(shape)
        .arg("--count")
        .arg(w.count.to_string())
        .arg("--size")
        .arg(w.size.to_string())
        .arg("--limit")
        .arg(ctx.limit.as_secs().to_string())
        .arg("--dir")
        .arg(&dir);
    // Waited for (and so reaped) before the run's CPU is read.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| format!("mq-peer-load: {e}"))?
        .map_err(|e| format!("mq-peer-load: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(format!("mq-peer-load ({}): {last}", out.status));
    }
    crate::line::read(&stdout).map_err(|e| format!("mq-peer-load's output: {e}"))
}
