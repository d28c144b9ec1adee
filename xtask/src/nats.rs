//! The NATS interoperability step of `cargo xtask ci` (`cargo xtask
//! nats-interop`): NATS clients nobody here wrote — the `async-nats` crate
//! (`xtask/peers/src/bin/nats-interop.rs`) and the `nats-py` package from
//! PyPI in a fresh venv (`xtask/nats/interop.py`, which also types at a raw
//! socket as a person would with telnet) — run the same scenarios (pub/sub,
//! wildcards, queue groups, request-reply with no responders, headers,
//! UNSUB max) against the nats-server of this machine (127.0.0.1:4222, or
//! one started from Debian's package) and against `mqd --nats`, and must see
//! the same results, except where [`DIFFERENCES`] says why not. Against mqd,
//! the Python script also exchanges messages with the `mq` CLI and with
//! Mosquitto's clients on mqd's MQTT port, both ways.

use std::process::Command;

use crate::bench::{NATS, Servers, peers_cargo, peers_target};
use crate::cmd::{self, run};
use crate::interop::{self, Expected, Results};
use crate::mq_tools;
use crate::python::venv_with;

/// Where mqd's results differ from nats-server's, what mqd says, and why.
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "telnet: SUB to a non-ASCII subject",
        "-ERR 'Invalid Subject' | PONG",
        "mq topics are visible ASCII (nats-server takes any UTF-8): \
         mq refuses what it cannot route rather than mangle it",
    ),
    (
        "telnet: PUB to a $ subject",
        "-ERR 'Permissions Violation for Publish to \"$mq.x\"' | PONG",
        "mq keeps topics starting with $ for itself ($dlq.*); nats-server \
         has its own system account instead",
    ),
    (
        "telnet: malformed arguments",
        "-ERR 'Invalid Arguments: PUB <subject> [reply] <size>' then close",
        "nats-server closes without a word; mq says what was wrong (bad \
         input gets a clear error)",
    ),
];

/// What mqd alone is checked for (the exchange with mq and MQTT clients).
const MQD_ONLY: &[(&str, &str)] = &[
    ("NATS to mq", "xnats.kitchen.temp 21.5"),
    ("NATS to MQTT", "xnats/kitchen/temp 21.5"),
    (
        "mq and MQTT to NATS",
        "xnats.from.mq hi-mq, xnats.from.mqtt hi-mqtt",
    ),
];

/// CI: both clients against both servers, as the module docs say.
pub fn interop() -> Result<(), String> {
    if !["mosquitto_pub", "mosquitto_sub"]
        .iter()
        .all(|c| cmd::on_path(c))
    {
        println!("the NATS-MQTT exchange needs mosquitto_pub and mosquitto_sub: installing them");
        cmd::ensure_apt(&["mosquitto-clients"])?;
    }
    println!("nats-py from PyPI into a fresh venv");
    let python = venv_with("nats-venv", "nats", "nats-py>=2.9,<3", true)?;
    run(&mut peers_cargo(&["build", "--bin", "nats-interop"]))?;
    let async_nats = peers_target().join("debug/nats-interop");
    let tools = mq_tools::tools()?;
    let mut servers = Servers::default();
    let reference = servers.ensure(&NATS);
    if let Some(reason) = reference.strip_prefix("unavailable:") {
        return Err(format!("no nats-server to compare with: {reason}"));
    }
    let mqd = mq_testkit::Mqd::builder("")
        .binary(&tools.mqd)
        .nats()
        .mqtt()
        .try_start()?;
    let nats = mqd.nats.ok_or("mqd has no NATS address")?;
    let mqtt = mqd.mqtt.ok_or("mqd has no MQTT address")?;
    let script = cmd::workspace_root().join("xtask/nats/interop.py");
    let (host, port) = reference
        .rsplit_once(':')
        .ok_or_else(|| format!("not HOST:PORT: {reference}"))?;
    let mut failed = Vec::new();
    // async-nats.
    println!("async-nats against nats-server at {reference}, then mqd at {nats}");
    let theirs = async_nats_run(&async_nats, &reference)?;
    let ours = async_nats_run(&async_nats, &nats.to_string())?;
    let expected = Expected {
        peer: "nats-server",
        differences: DIFFERENCES,
        mqd_only: &[],
    };
    if let Err(e) = interop::compare("nats interop (async-nats)", &expected, &theirs, &ours, &[]) {
        failed.push(e);
    }
    // nats-py and the raw socket.
    println!("nats-py against nats-server at {reference}, then mqd at {nats}");
    let theirs = interop::results(
        Command::new(&python).arg(&script).args([host, port]),
        "interop.py",
    )?;
    let mq = tools.mq.display().to_string();
    let ours = interop::results(
        Command::new(&python)
            .arg(&script)
            .args(["127.0.0.1", &nats.port().to_string()])
            .args(["--mq", &mq, "--mq-server", &mqd.addr.to_string()])
            .args(["--mqtt", &mqtt.port().to_string()]),
        "interop.py",
    )?;
    let expected = Expected {
        mqd_only: MQD_ONLY,
        ..expected
    };
    if let Err(e) = interop::compare("nats interop (nats-py)", &expected, &theirs, &ours, &[]) {
        failed.push(e);
    }
    drop(servers);
    match failed.is_empty() {
        true => Ok(()),
        false => Err(failed.join("\n")),
    }
}

fn async_nats_run(program: &std::path::Path, addr: &str) -> Result<Results, String> {
    interop::results(
        Command::new(program).arg(format!("nats://{addr}")),
        "nats-interop (async-nats)",
    )
}
