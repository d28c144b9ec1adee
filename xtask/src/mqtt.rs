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
use crate::interop::{self, Expected, Results};
use crate::mq_tools;
use crate::python::venv_with;

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
    let python = venv_with("mqtt-venv", "paho.mqtt", "paho-mqtt>=2,<3", false)?;
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
    let expected = Expected {
        peer: "Mosquitto",
        differences: DIFFERENCES,
        mqd_only: MQD_ONLY,
    };
    interop::compare("mqtt interop", &expected, &theirs, &ours, &bad)
}

/// Runs one of the scripts; its `name<TAB>result` lines.
fn script(
    python: &PathBuf,
    name: &str,
    host: &str,
    port: &str,
    extra: &[&str],
) -> Result<Results, String> {
    let mut command = Command::new(python);
    command
        .arg(scripts().join(name))
        .args([host, port])
        .args(extra);
    interop::results(&mut command, name)
}
