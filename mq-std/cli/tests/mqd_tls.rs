//! `mqd` with TLS listeners, from its config file: the mq protocol, MQTT and
//! HTTPS over TLS beside the plain ones, and reloads without a restart: on
//! SIGHUP the server certificate is swapped under live connections, a
//! revoked identity is closed with the reason while the others stay, and a
//! replaced client CA takes the identity of certificates it does not vouch
//! for; with
//! `reload_watch_ms` (the way on Windows) a changed file is enough.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_client::blocking::Client;
use mq_client::client::{ClientOptions, Error, PublishOptions, QoS, Reason, TlsOptions};
use mq_testkit::tls::{CertFiles, TestCa};
use support::Mqd;

const LIMIT: Duration = Duration::from_secs(20);

fn config(server: &CertFiles, client_ca: &Path, identities: &[&str], extra: &str) -> String {
    let mut c = format!(
        "listen_tls = \"127.0.0.1:0\"\nhttp_tls = \"127.0.0.1:0\"\n{extra}\n\
         [mqtt]\nlisten_tls = \"127.0.0.1:0\"\n\n\
         [tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\nrequire_client_cert = false\n\n\
         [[tokens]]\ntoken = \"ops\"\npublish = [\">\"]\nsubscribe = [\">\"]\n",
        server.cert, server.key, client_ca
    );
    for id in identities {
        c.push_str(&format!(
            "\n[[identities]]\nidentity = \"{id}\"\npublish = [\"dev.{{identity}}.>\"]\n"
        ));
    }
    c
}

fn tls_client(addr: SocketAddr, tls: TlsOptions) -> Result<Client, Error> {
    let mut o = ClientOptions::new(format!("localhost:{}", addr.port()));
    o.tls = Some(tls);
    o.connect_timeout = Duration::from_secs(5);
    Client::connect(o)
}

fn qos1() -> PublishOptions {
    PublishOptions::new(QoS::AtLeastOnce)
}

/// Waits until the client's publishes fail, and returns the error.
fn closed(c: &Client, topic: &str) -> Error {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Err(e) = c.publish(topic, "x", &qos1()) {
            return e;
        }
        assert!(Instant::now() < deadline, "the connection was not closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_log(mqd: &Mqd, text: &str, count: usize) {
    let deadline = Instant::now() + LIMIT;
    while mqd.log().matches(text).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log:\n{}",
            mqd.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` over TLS, verified against `ca` for `localhost`.
fn https_get(addr: SocketAddr, ca: &Path, path: &str) -> String {
    let roots = mq_client::tls::load_roots(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(mq_client::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = tls.read_to_string(&mut out);
    out
}

#[test]
#[cfg(unix)]
fn sighup_swaps_the_certificate_and_closes_only_revoked_identities() {
    let dir = std::env::temp_dir().join(format!("mq-mqd-tls-{}", std::process::id()));
    let ca = TestCa::new(&dir, "first");
    let server = ca.server("server", &["localhost", "127.0.0.1"]);
    let clients = TestCa::new(&dir, "clients");
    let cfg = config(&server, &clients.cert, &["sensor-1", "sensor-2"], "");
    let mqd = Mqd::start(&cfg);
    let tls_addr = mqd
        .ready_addr("listen_tls")
        .expect("listen_tls in the ready file");
    assert!(mqd.ready_addr("mqtt_tls").is_some(), "{}", mqd.log());
    let https = mqd
        .ready_addr("http_tls")
        .expect("http_tls in the ready file");
    let health = https_get(https, &ca.cert, "/health");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );

    let cert = |cn: &str| {
        let f = clients.client(cn, cn);
        TlsOptions::new(&ca.cert).with_client_cert(f.cert, f.key)
    };
    let one = tls_client(tls_addr, cert("sensor-1")).expect("sensor-1 connects");
    let two = tls_client(tls_addr, cert("sensor-2")).expect("sensor-2 connects");
    one.publish("dev.sensor-1.t", "1", &qos1()).unwrap();
    two.publish("dev.sensor-2.t", "1", &qos1()).unwrap();

    // Rotate: a server certificate from another CA into the same files, and
    // sensor-2 no longer in the config.
    let next = TestCa::new(&dir, "second");
    let rotated = next.server("rotated", &["localhost", "127.0.0.1"]);
    std::fs::copy(&rotated.cert, &server.cert).unwrap();
    std::fs::copy(&rotated.key, &server.key).unwrap();
    std::fs::write(
        mqd.dir.join("mqd.toml"),
        config(&server, &clients.cert, &["sensor-1"], ""),
    )
    .unwrap();
    mqd.hangup();
    wait_for_log(&mqd, "reloaded TLS files", 1);

    // sensor-2 is closed with the reason; sensor-1 goes on, on its old session.
    let err = closed(&two, "dev.sensor-2.t");
    assert!(matches!(err, Error::Closed(Reason::BadToken)), "{err:?}");
    one.publish("dev.sensor-1.t", "2", &qos1()).unwrap();
    assert!(mqd.log().contains("closed=1"), "{}", mqd.log());

    // New connections get the new certificate: the old CA no longer verifies it.
    let err = tls_client(tls_addr, cert("sensor-1")).unwrap_err();
    assert!(format!("{err}").contains("UnknownIssuer"), "{err}");
    let f = clients.client("again", "sensor-1");
    let again = TlsOptions::new(&next.cert).with_client_cert(f.cert, f.key);
    let again = tls_client(tls_addr, again).expect("the new certificate verifies");
    again.publish("dev.sensor-1.t", "3", &qos1()).unwrap();
    let health = https_get(https, &next.cert, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // A reload that cannot be applied keeps what runs.
    std::fs::write(&server.key, "not a key").unwrap();
    mqd.hangup();
    wait_for_log(&mqd, "reload failed", 1);
    one.publish("dev.sensor-1.t", "4", &qos1()).unwrap();
    let f = clients.client("third", "sensor-1");
    let third = TlsOptions::new(&next.cert).with_client_cert(f.cert, f.key);
    tls_client(tls_addr, third).expect("still serving the rotated certificate");

    // The client CA is replaced: a certificate it no longer vouches for loses
    // its identity and, with no token to fall back on, its connection.
    std::fs::copy(&rotated.key, &server.key).unwrap();
    let newer = TestCa::new(&dir, "newer-clients");
    std::fs::copy(&newer.cert, &clients.cert).unwrap();
    mqd.hangup();
    wait_for_log(&mqd, "reloaded TLS files", 2);
    let err = closed(&one, "dev.sensor-1.t");
    assert!(matches!(err, Error::Closed(Reason::BadToken)), "{err:?}");
    assert!(mqd.log().contains("no longer trusted"), "{}", mqd.log());
    drop(mqd);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_watched_config_change_reloads_without_a_signal() {
    let dir = std::env::temp_dir().join(format!("mq-mqd-tls-watch-{}", std::process::id()));
    let ca = TestCa::new(&dir, "ca");
    let server = ca.server("server", &["localhost", "127.0.0.1"]);
    let watch = "reload_watch_ms = 100";
    let mqd = Mqd::start(&config(&server, &ca.cert, &["sensor-1", "sensor-2"], watch));
    let tls_addr = mqd.ready_addr("listen_tls").unwrap();
    let cert = |cn: &str| {
        let f = ca.client(cn, cn);
        TlsOptions::new(&ca.cert).with_client_cert(f.cert, f.key)
    };
    let https = mqd.ready_addr("http_tls").unwrap();
    let health = https_get(https, &ca.cert, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let one = tls_client(tls_addr, cert("sensor-1")).unwrap();
    let two = tls_client(tls_addr, cert("sensor-2")).unwrap();
    // Another length, so the change shows even within one mtime tick.
    let cfg = config(
        &server,
        &ca.cert,
        &["sensor-1"],
        &format!("{watch}\n# sensor-2 revoked"),
    );
    std::fs::write(mqd.dir.join("mqd.toml"), cfg).unwrap();
    let err = closed(&two, "dev.sensor-2.t");
    assert!(matches!(err, Error::Closed(Reason::BadToken)), "{err:?}");
    one.publish("dev.sensor-1.t", "still here", &qos1())
        .unwrap();
    wait_for_log(&mqd, "a watched file changed", 1);
    drop(mqd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `mq` with `args`, against nothing but what `args` say.
fn mq(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mq"))
        .args(args)
        .env_remove("MQ_SERVER")
        .env_remove("MQ_TOKEN")
        .env_remove("MQ_CA")
        .env_remove("MQ_TLS")
        .output()
        .expect("mq runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_cli_speaks_tls_and_mutual_tls() {
    let dir = std::env::temp_dir().join(format!("mq-mqd-tls-cli-{}", std::process::id()));
    let ca = TestCa::new(&dir, "ca");
    let other = TestCa::new(&dir, "other");
    let server = ca.server("server", &["localhost", "127.0.0.1"]);
    let mqd = Mqd::start(&config(&server, &ca.cert, &["sensor-1"], ""));
    let at = format!("localhost:{}", mqd.ready_addr("listen_tls").unwrap().port());
    let (ca_pem, other_pem) = (ca.cert.to_str().unwrap(), other.cert.to_str().unwrap());
    let sensor = ca.client("sensor-1", "sensor-1");
    let (cert, key) = (sensor.cert.to_str().unwrap(), sensor.key.to_str().unwrap());

    let (ok, text) = mq(&[
        "--server",
        &at,
        "--ca",
        ca_pem,
        "--cert",
        cert,
        "--key",
        key,
        "pub",
        "--qos",
        "1",
        "dev.sensor-1.t",
        "21.5",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = mq(&[
        "--server", &at, "--ca", ca_pem, "--token", "ops", "sub", "--from", "0", "--count", "1",
        "dev.>",
    ]);
    assert!(ok && text.contains("21.5"), "{text}");

    let (ok, text) = mq(&["--server", &at, "--tls", "pub", "a", "x"]);
    assert!(!ok && text.contains("--ca"), "{text}");
    let (ok, text) = mq(&["--server", &at, "--ca", other_pem, "pub", "a", "x"]);
    assert!(!ok && text.contains("UnknownIssuer"), "{text}");
    let (ok, text) = mq(&[
        "--server",
        &at,
        "--ca",
        ca_pem,
        "--server-name",
        "elsewhere",
        "pub",
        "a",
        "x",
    ]);
    assert!(!ok && text.contains("not valid for name"), "{text}");
    drop(mqd);
    let _ = std::fs::remove_dir_all(&dir);
}
