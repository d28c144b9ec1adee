//! The MQTT interoperability step of `cargo xtask ci`: MQTT clients nobody
//! here wrote — `mosquitto_pub`, `mosquitto_sub`, `mosquitto_rr` (Debian's
//! mosquitto-clients) and the `paho-mqtt` Python package — run the same
//! scenarios (`xtask/mqtt/interop.py`) against the Mosquitto on this machine
//! (127.0.0.1:1883, or one started from Debian's package) and against `mqd`
//! (`--mqtt` on a free port), and must see the same results; against `mqd`
//! the `mq` CLI also checks MQTT to mq and mq to MQTT, and
//! `xtask/mqtt/badinput.py` sends it bad input, each answered as expected
//! while a well-behaved subscriber keeps getting its messages.

use std::path::PathBuf;
use std::process::Command;

use crate::bench::{MOSQUITTO, Servers};
use crate::cmd;
use crate::mq_tools;
use crate::python::tool_venv;

/// Where mqd's results may differ from Mosquitto's, what mqd must say, and why.
const DIFFERENCES: &[(&str, &str, &str)] = &[(
    "retained to a shared subscription",
    "0",
    "MQTT 5 (3.8.4) sends retained messages only to non-shared subscriptions; \
     Mosquitto sends them to shared ones too",
)];

/// What mqd alone is checked for (the mq CLI and bad input), and the answer.
const MQD_ONLY: &[(&str, &str)] = &[
    ("mq to MQTT", "mqx/kitchen/temp 21.5"),
    ("MQTT to mq", "mqx.dev1.status online"),
    ("PINGREQ before CONNECT", "nothing then close"),
    ("unknown protocol level", "CONNACK 0x01 then close"),
    ("not MQTT at all", "nothing then close"),
    (
        "malformed: topic runs past the end",
        "DISCONNECT 0x81 then close",
    ),
    ("oversized packet", "DISCONNECT 0x95 then close"),
    ("QoS 3 publish", "DISCONNECT 0x81 then close"),
    ("second CONNECT", "DISCONNECT 0x82 then close"),
    ("topic alias over the maximum", "DISCONNECT 0x94 then close"),
    ("server packet from a client", "DISCONNECT 0x82 then close"),
    ("malformed (3.1.1)", "nothing then close"),
    ("SUBSCRIBE without filters (3.1.1)", "nothing then close"),
    ("CONNECT never comes", "nothing then close"),
    ("others keep flowing", "still here"),
];

fn scripts() -> PathBuf {
    cmd::workspace_root().join("xtask/mqtt")
}

/// CI: the interop scenarios and the bad input, as the module docs say.
pub fn interop() -> Result<(), String> {
    let clients = ["mosquitto_pub", "mosquitto_sub", "mosquitto_rr"];
    if !clients.iter().all(|c| cmd::on_path(c)) {
        println!(
            "the MQTT interop tests need mosquitto_pub, mosquitto_sub and mosquitto_rr \
             (Debian's mosquitto-clients): installing them"
        );
        cmd::ensure_apt(&["mosquitto-clients"])?;
    }
    let python = paho_venv()?;
    let tools = mq_tools::tools()?;
    let mut servers = Servers::default();
    let mosquitto = servers.ensure(&MOSQUITTO);
    if let Some(reason) = mosquitto.strip_prefix("unavailable:") {
        return Err(format!("no Mosquitto to compare with: {reason}"));
    }
    let mqd = mq_testkit::Mqd::builder("")
        .binary(&tools.mqd)
        .mqtt()
        .try_start()?;
    let mqtt = mqd.mqtt.ok_or("mqd has no MQTT address")?;
    let (host, port) = mosquitto
        .rsplit_once(':')
        .ok_or_else(|| format!("not HOST:PORT: {mosquitto}"))?;
    println!("interop scenarios against Mosquitto at {mosquitto}");
    let theirs = script(&python, "interop.py", host, port, &[])?;
    println!(
        "interop scenarios against mqd at {mqtt} (and the mq CLI at {})",
        mqd.addr
    );
    let mq = tools.mq.display().to_string();
    let server = mqd.addr.to_string();
    let port = mqtt.port().to_string();
    let ours = script(
        &python,
        "interop.py",
        "127.0.0.1",
        &port,
        &["--mq", &mq, "--mq-server", &server],
    )?;
    println!("bad input against mqd");
    let bad = script(&python, "badinput.py", "127.0.0.1", &port, &[])?;
    drop(servers);
    compare(&theirs, &ours, &bad)
}

/// The venv with paho-mqtt (under the target dir); its python.
fn paho_venv() -> Result<PathBuf, String> {
    tool_venv("mqtt-venv", "paho.mqtt", "paho-mqtt>=2,<3")
}

/// Runs one of the scripts; its `name<TAB>result` lines.
fn script(
    python: &PathBuf,
    name: &str,
    host: &str,
    port: &str,
    extra: &[&str],
) -> Result<Vec<(String, String)>, String> {
    let output = Command::new(python)
        .arg(scripts().join(name))
        .args([host, port])
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{name} failed ({}):\n{text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Mosquitto's results against mqd's, and mqd's own checks; prints a table.
fn compare(
    theirs: &[(String, String)],
    ours: &[(String, String)],
    bad: &[(String, String)],
) -> Result<(), String> {
    let find = |lines: &[(String, String)], name: &str| {
        lines
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (name, expected) in theirs {
        let got = find(ours, name).unwrap_or_else(|| "(missing)".into());
        let verdict = match DIFFERENCES.iter().find(|(n, _, _)| n == name) {
            Some((_, want, why)) if got == *want => format!("differs by design: {why}"),
            Some(_) => "FAILED".into(),
            None if got == *expected && !got.starts_with("FAILED") => "same".into(),
            None => "FAILED".into(),
        };
        if verdict == "FAILED" {
            failed.push(format!("{name}: Mosquitto `{expected}`, mqd `{got}`"));
        }
        rows.push((name.clone(), expected.clone(), got, verdict));
    }
    for (name, want) in MQD_ONLY {
        let got = find(ours, name)
            .or_else(|| find(bad, name))
            .unwrap_or_else(|| "(missing)".into());
        let verdict = if got == *want {
            "as expected"
        } else {
            "FAILED"
        };
        if verdict == "FAILED" {
            failed.push(format!("{name}: expected `{want}`, mqd `{got}`"));
        }
        rows.push((name.to_string(), "-".into(), got, verdict.into()));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\n{:width$}  result", "scenario");
    for (name, theirs, ours, verdict) in &rows {
        println!("{name:width$}  {verdict}: Mosquitto {theirs} | mqd {ours}");
    }
    let same = rows.iter().filter(|r| r.3 != "FAILED").count();
    println!("mqtt interop: {same} passed, {} failed", failed.len());
    match failed.is_empty() {
        true => Ok(()),
        false => Err(failed.join("\n")),
    }
}
