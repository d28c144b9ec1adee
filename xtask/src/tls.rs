//! `cargo xtask tls-interop` (a step of `cargo xtask ci`): TLS clients nobody
//! here wrote against `mqd`'s TLS listeners, with certificates made by the
//! `openssl` command line (Debian's `openssl`), the way a user makes them:
//!
//! - `openssl s_client` to the mq protocol's TLS port: the handshake verifies
//!   against the CA and the name `localhost`, with and without a client
//!   certificate; against another CA it fails;
//! - `mosquitto_sub` and `mosquitto_pub --cafile` (Debian's
//!   mosquitto-clients) to the MQTT TLS port: a message published with a
//!   client certificate (its identity's permissions) reaches a subscriber that
//!   logged in with a token, and the `mq` CLI over TLS on the mq port; a
//!   `mosquitto_pub` that trusts another CA is refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cmd::{self, output_within};
use crate::mq_tools;

/// How long one outside client may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The identity of the client certificate, and the token of the subscriber.
const IDENTITY: &str = "interop-device";
const TOKEN: &str = "interop-token";

/// The PEM files the scenarios use.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args).stdin(Stdio::null());
    output_within(&mut cmd, CLIENT_TIMEOUT).map(drop)
}

/// A CA (`NAME.pem`, `NAME.key`).
fn make_ca(dir: &Path, name: &str) -> Result<(), String> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

/// A certificate for `cn` signed by the CA `ca`, with `extensions` (an
/// openssl extension file's lines).
fn issue(dir: &Path, ca: &str, name: &str, cn: &str, extensions: &str) -> Result<(), String> {
    let ext = format!("{name}.ext");
    fs::write(dir.join(&ext), extensions).map_err(|e| format!("{ext}: {e}"))?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

fn make_pki(dir: &Path) -> Result<Pki, String> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    make_ca(dir, "ca")?;
    make_ca(dir, "other")?;
    issue(
        dir,
        "ca",
        "server",
        "localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )?;
    issue(
        dir,
        "ca",
        "client",
        IDENTITY,
        "extendedKeyUsage=clientAuth\n",
    )?;
    Ok(Pki {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    })
}

fn config(p: &Pki) -> String {
    format!(
        "listen_tls = \"127.0.0.1:0\"\n\
         [mqtt]\nlisten_tls = \"127.0.0.1:0\"\n\
         [tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\nrequire_client_cert = false\n\
         [[tokens]]\ntoken = \"{TOKEN}\"\npublish = [\">\"]\nsubscribe = [\">\"]\n\
         [[identities]]\nidentity = \"{IDENTITY}\"\npublish = [\"sensors.>\"]\n",
        p.server_cert, p.server_key, p.ca
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Runs `cmd` (echoed) for at most [`CLIENT_TIMEOUT`]: whether it exited 0,
/// and everything it printed, stdout then stderr.
fn outcome(cmd: &mut Command) -> (bool, String) {
    match start(cmd) {
        Ok(child) => finish(child),
        Err(e) => (false, e),
    }
}

/// Starts `cmd` (echoed) with its output captured.
fn start(cmd: &mut Command) -> Result<Child, String> {
    println!("$ {}", cmd::display(cmd));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("does not start: {e}"))
}

/// Waits for `child` for at most [`CLIENT_TIMEOUT`] (then kills it): whether
/// it exited 0, and everything it printed.
fn finish(mut child: Child) -> (bool, String) {
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    let mut late = false;
    while matches!(child.try_wait(), Ok(None)) {
        if std::time::Instant::now() > deadline {
            late = true;
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match child.wait_with_output() {
        Ok(out) => (
            out.status.success() && !late,
            format!(
                "{}{}{}",
                if late {
                    "(killed: it ran too long)\n"
                } else {
                    ""
                },
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// `openssl s_client` to `port`: whether it succeeded, and what it printed.
fn s_client(port: u16, ca: &Path, client: Option<(&Path, &Path)>) -> (bool, String) {
    let connect = format!("127.0.0.1:{port}");
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &connect, "-servername", "localhost"])
        .args([
            "-verify_hostname",
            "localhost",
            "-verify_return_error",
            "-brief",
        ])
        .args(["-CAfile", path(ca)])
        .stdin(Stdio::null());
    if let Some((cert, key)) = client {
        cmd.args(["-cert", path(cert), "-key", path(key)]);
    }
    outcome(&mut cmd)
}

/// CI: the scenarios of the module docs.
pub fn interop() -> Result<(), String> {
    cmd::ensure_program("openssl", "openssl")?;
    if !cmd::on_path("mosquitto_pub") || !cmd::on_path("mosquitto_sub") {
        println!("the TLS interop needs mosquitto_pub and mosquitto_sub: installing them");
        cmd::ensure_apt(&["mosquitto-clients"])?;
    }
    let tools = mq_tools::tools()?;
    let pki = make_pki(&cmd::target_dir().join("tls-interop"))?;
    let mqd = mq_testkit::Mqd::builder(&config(&pki))
        .binary(&tools.mqd)
        .log("info,mq_server=debug")
        .try_start()?;
    let mq_port = mqd
        .ready_addr("listen_tls")
        .ok_or("mqd has no listen_tls")?
        .port();
    let mqtt_port = mqd
        .ready_addr("mqtt_tls")
        .ok_or("mqd has no mqtt_tls")?
        .port();
    let mut passed = 0;
    let mut check = |what: &str, ok: bool, detail: &str| -> Result<(), String> {
        if ok {
            passed += 1;
            println!("    ok: {what}");
            Ok(())
        } else {
            Err(format!("{what}: {detail}\nmqd's log:\n{}", mqd.log()))
        }
    };

    println!("openssl s_client to mqd's mq TLS port {mq_port}");
    let (ok, text) = s_client(mq_port, &pki.ca, None);
    check(
        "handshake verified against the CA and localhost",
        ok && text.contains("Verification: OK"),
        &text,
    )?;
    let (ok, text) = s_client(mq_port, &pki.ca, Some((&pki.client_cert, &pki.client_key)));
    check(
        "with a client certificate (mutual TLS)",
        ok && text.contains("Verification: OK"),
        &text,
    )?;
    let (ok, text) = s_client(mq_port, &pki.other_ca, None);
    check(
        "another CA is refused by s_client's verification",
        !ok && text.contains("verify"),
        &text,
    )?;

    println!("mosquitto_sub/mosquitto_pub --cafile to mqd's MQTT TLS port {mqtt_port}");
    let port = mqtt_port.to_string();
    let mq_server = format!("localhost:{mq_port}");
    let tls_args = ["-h", "localhost", "-p", &port, "--cafile", path(&pki.ca)];
    let sub = start(Command::new("mosquitto_sub").args(tls_args).args([
        "-u",
        "any",
        "-P",
        TOKEN,
        "-t",
        "sensors/#",
        "-C",
        "1",
        "-W",
        "15",
        "-v",
    ]))?;
    let mq_sub = start(
        Command::new(&tools.mq)
            .args([
                "--server",
                &mq_server,
                "--ca",
                path(&pki.ca),
                "--token",
                TOKEN,
            ])
            .args(["sub", "--count", "1", "sensors.>"]),
    )?;
    // Both subscribed before the publish: mqd counts their subscriptions,
    // two for `sensors/#` (it is `sensors` and `sensors.>` in mq) and one for
    // the mq CLI's.
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    while mqd.metric("mq_subscriptions") < 3 {
        if std::time::Instant::now() > deadline {
            return Err(format!("the subscribers did not subscribe:\n{}", mqd.log()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut publish = Command::new("mosquitto_pub");
    publish
        .args(tls_args)
        .args([
            "--cert",
            path(&pki.client_cert),
            "--key",
            path(&pki.client_key),
        ])
        .args(["-t", "sensors/kitchen/temp", "-m", "21.5", "-q", "1"]);
    let (ok, text) = outcome(&mut publish);
    check("mosquitto_pub with a client certificate", ok, &text)?;
    let (ok, text) = finish(sub);
    check(
        "mosquitto_sub over TLS (token as password) got it",
        ok && text.trim() == "sensors/kitchen/temp 21.5",
        &text,
    )?;
    let (ok, text) = finish(mq_sub);
    check(
        "the mq CLI over TLS on the mq port got it too",
        ok && text.contains("21.5"),
        &text,
    )?;
    let mut wrong = Command::new("mosquitto_pub");
    wrong
        .args([
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            path(&pki.other_ca),
        ])
        .args(["-u", "any", "-P", TOKEN, "-t", "sensors/x", "-m", "no"]);
    let (ok, text) = outcome(&mut wrong);
    check("mosquitto_pub trusting another CA is refused", !ok, &text)?;
    println!("tls-interop: {passed} passed, 0 failed");
    Ok(())
}
