//! TLS and mutual TLS between the clients (async and blocking) and an
//! in-process server, with certificates made here (rcgen): connecting over
//! TLS and mutual TLS, identities with their permissions, and each refusal
//! (an unknown CA, an expired certificate, the wrong server name, an unknown
//! identity, a plaintext client on a TLS port) while other clients keep
//! flowing. Reloads are in `tls_reload.rs`.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mq_core::broker::{Auth, Config as BrokerConfig, Permissions};
use mq_std::blocking;
use mq_std::client::{Client, ClientOptions, Error, Reason, SubscribeOptions, TlsOptions};
use mq_std::server::{self, ServerHandle, ServerOptions};
use mq_std::server_tls::{ServerTls, TlsSettings};
use mq_testkit::tls::{CertFiles, TestCa};
use support::*;

struct Pki {
    _dir: Dir,
    ca: TestCa,
    other_ca: TestCa,
    server: CertFiles,
}

/// A directory removed when the test ends.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pki(test: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("mq-tls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ca = TestCa::new(&dir, "ca");
    let other_ca = TestCa::new(&dir, "other");
    let server = ca.server("server", &["localhost", "127.0.0.1"]);
    Pki {
        _dir: Dir(dir),
        ca,
        other_ca,
        server,
    }
}

fn settings(p: &Pki, client_ca: Option<&Path>, require: bool) -> TlsSettings {
    TlsSettings {
        cert: p.server.cert.clone(),
        key: p.server.key.clone(),
        client_ca: client_ca.map(Path::to_path_buf),
        require_client_cert: require,
    }
}

async fn tls_server(s: TlsSettings, broker: BrokerConfig) -> ServerHandle {
    server::spawn(ServerOptions {
        broker,
        listen_tls: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(Arc::new(ServerTls::load(s).expect("TLS settings load"))),
        ..ServerOptions::default()
    })
    .await
    .expect("server starts")
}

fn tls_addr(srv: &ServerHandle) -> String {
    // By name: the certificate carries `localhost` and `127.0.0.1`.
    format!("localhost:{}", srv.addrs().listen_tls.unwrap().port())
}

fn tls_options(addr: &str, tls: TlsOptions) -> ClientOptions {
    let mut o = ClientOptions::new(addr);
    o.tls = Some(tls);
    o.connect_timeout = Duration::from_secs(5);
    o
}

fn io_text(e: &Error) -> String {
    match e {
        Error::Io(io) => io.to_string(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// A subscriber on the plain port and a publisher on the TLS port, exchanging
/// one message: proof that the broker keeps serving.
async fn still_flowing(srv: &ServerHandle, publisher: &Client, n: u32) {
    let plain = Client::connect(options(srv.local_addr())).await.unwrap();
    let mut sub = plain
        .subscribe("flow.>", &SubscribeOptions::default())
        .await
        .unwrap();
    publisher
        .publish(&format!("flow.{n}"), "still flowing", &qos1())
        .await
        .unwrap();
    let msg = within(sub.next()).await.unwrap();
    assert_eq!(&msg.payload[..], b"still flowing");
    msg.ack().unwrap();
    plain.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_and_plain_clients_share_one_broker() {
    let p = pki("share");
    let srv = tls_server(settings(&p, None, false), BrokerConfig::default()).await;
    within(async {
        let addr = tls_addr(&srv);
        let client = Client::connect(tls_options(&addr, TlsOptions::new(&p.ca.cert)))
            .await
            .expect("TLS connect");
        still_flowing(&srv, &client, 1).await;

        // The blocking client, over the same TLS port, by IP address.
        let ip = format!("127.0.0.1:{}", srv.addrs().listen_tls.unwrap().port());
        let opts = tls_options(&ip, TlsOptions::new(&p.ca.cert));
        let got = blocking_task(move || {
            let c = blocking::Client::connect(opts).unwrap();
            let sub = c.subscribe("b.>", &SubscribeOptions::default()).unwrap();
            c.publish("b.x", "over tls", &qos1()).unwrap();
            let msg = sub.recv_timeout(Duration::from_secs(10)).unwrap();
            let payload = msg.payload.to_vec();
            msg.ack().unwrap();
            c.close();
            payload
        })
        .await;
        assert_eq!(got, b"over tls");

        // A large message crosses TLS records and the client's read buffer.
        let mut sub = client
            .subscribe("big", &SubscribeOptions::default())
            .await
            .unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        client.publish("big", big.clone(), &qos1()).await.unwrap();
        let msg = sub.next().await.unwrap();
        assert_eq!(msg.payload.len(), big.len());
        assert!(msg.payload[..] == big[..]);
        msg.ack().unwrap();
        client.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_others_keep_flowing() {
    let p = pki("refusals");
    let srv = tls_server(settings(&p, None, false), BrokerConfig::default()).await;
    within(async {
        let addr = tls_addr(&srv);
        let good = Client::connect(tls_options(&addr, TlsOptions::new(&p.ca.cert)))
            .await
            .unwrap();

        // A client that trusts another CA.
        let err = Client::connect(tls_options(&addr, TlsOptions::new(&p.other_ca.cert)))
            .await
            .unwrap_err();
        let text = io_text(&err);
        assert!(text.contains("UnknownIssuer"), "{text}");
        still_flowing(&srv, &good, 1).await;

        // The wrong server name.
        let wrong = TlsOptions::new(&p.ca.cert).with_server_name("broker.example.org");
        let err = Client::connect(tls_options(&addr, wrong))
            .await
            .unwrap_err();
        let text = io_text(&err);
        assert!(text.contains("not valid for name"), "{text}");
        still_flowing(&srv, &good, 2).await;

        // A plaintext client on the TLS port.
        let mut plain = ClientOptions::new(addr.clone());
        plain.connect_timeout = Duration::from_secs(5);
        let err = Client::connect(plain).await.unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err:?}");
        still_flowing(&srv, &good, 3).await;

        // A TLS client on the plain port.
        let plain_port = format!("localhost:{}", srv.local_addr().port());
        let err = Client::connect(tls_options(&plain_port, TlsOptions::new(&p.ca.cert)))
            .await
            .unwrap_err();
        let text = io_text(&err);
        assert!(text.contains("TLS"), "{text}");
        still_flowing(&srv, &good, 4).await;

        // TLS settings that cannot be used are refused before connecting.
        let missing = TlsOptions::new(p.ca.cert.with_extension("missing"));
        let err = Client::connect(tls_options(&addr, missing))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Tls(e) if e.to_string().contains(".missing")),
            "{err}"
        );
        let no_ca = TlsOptions::default();
        let err = Client::connect(tls_options(&addr, no_ca))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{err}");
        good.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

fn perms(publish: &[&str], subscribe: &[&str]) -> Permissions {
    Permissions {
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        admin: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_identities_carry_permissions() {
    let p = pki("mtls");
    let broker = BrokerConfig {
        auth: Auth {
            tokens: vec![("ops".into(), Permissions::all())],
            identities: vec![(
                "sensor-17".into(),
                perms(&["dev.{identity}.>", "flow.>"], &["dev.{identity}.cmd"]),
            )],
        },
        ..BrokerConfig::default()
    };
    let srv = tls_server(settings(&p, Some(&p.ca.cert), true), broker).await;
    within(async {
        let addr = tls_addr(&srv);
        let sensor = p.ca.client("sensor-17", "sensor-17");
        let with_cert =
            |c: &CertFiles| TlsOptions::new(&p.ca.cert).with_client_cert(&c.cert, &c.key);
        let dev = Client::connect(tls_options(&addr, with_cert(&sensor)))
            .await
            .expect("mutual TLS connect");
        dev.publish("dev.sensor-17.temp", "21.5", &qos1())
            .await
            .unwrap();
        let err = dev
            .publish("dev.sensor-18.temp", "spoof", &qos1())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Rejected(Reason::NotAuthorized)),
            "{err:?}"
        );
        dev.subscribe("dev.sensor-17.cmd", &SubscribeOptions::default())
            .await
            .unwrap();
        let err = dev
            .subscribe("dev.>", &SubscribeOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Rejected(Reason::NotAuthorized)),
            "{err:?}"
        );

        let mut ops = ClientOptions::new(srv.local_addr().to_string());
        ops.token = Some("ops".into());
        let ops = Client::connect(ops).await.unwrap();
        let mut sub = ops
            .subscribe("flow.>", &SubscribeOptions::default())
            .await
            .unwrap();
        let flow = |n: u32| {
            let dev = dev.clone();
            async move {
                dev.publish(&format!("flow.{n}"), "ok", &qos1())
                    .await
                    .unwrap();
            }
        };

        // Without a client certificate, on a port that requires one.
        let err = Client::connect(tls_options(&addr, TlsOptions::new(&p.ca.cert)))
            .await
            .unwrap_err();
        let text = io_text(&err);
        assert!(text.contains("CertificateRequired"), "{text}");
        flow(1).await;

        // An expired certificate.
        let old = p.ca.expired_client("old", "sensor-17");
        let err = Client::connect(tls_options(&addr, with_cert(&old)))
            .await
            .unwrap_err();
        let text = io_text(&err);
        assert!(text.contains("CertificateExpired"), "{text}");
        flow(2).await;

        // A certificate from a CA the server does not trust.
        let foreign = p.other_ca.client("foreign", "sensor-17");
        let err = Client::connect(tls_options(&addr, with_cert(&foreign)))
            .await
            .unwrap_err();
        let text = io_text(&err);
        assert!(
            text.contains("UnknownCA") || text.contains("BadCertificate"),
            "{text}"
        );
        flow(3).await;

        // A valid certificate whose identity has no permissions (and no token).
        let stranger = p.ca.client("stranger", "stranger");
        let err = Client::connect(tls_options(&addr, with_cert(&stranger)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Refused(Reason::BadToken)), "{err:?}");
        flow(4).await;

        for n in 1..=4 {
            let msg = sub.next().await.unwrap();
            assert_eq!(msg.topic, format!("flow.{n}"));
            msg.ack().unwrap();
        }
        dev.close().await;
        ops.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

/// A subscriber over TLS that stops reading makes the server's socket push
/// back while TLS holds encrypted records the socket did not take; once the
/// subscriber reads again every message of the burst must arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_tls_subscriber_gets_the_whole_burst() {
    let p = pki("burst");
    let srv = tls_server(settings(&p, None, false), BrokerConfig::default()).await;
    within(async {
        let mut opts = tls_options(&tls_addr(&srv), TlsOptions::new(&p.ca.cert));
        opts.inbox_bytes = 256 << 10;
        let slow = Client::connect(opts).await.unwrap();
        let mut sub_opts = SubscribeOptions::default();
        sub_opts.credit = 512;
        let mut sub = slow.subscribe("burst", &sub_opts).await.unwrap();
        let publisher = Client::connect(options(srv.local_addr())).await.unwrap();
        const N: usize = 400;
        let body = vec![7u8; 16 << 10];
        for _ in 0..N {
            publisher
                .publish("burst", body.clone(), &qos1())
                .await
                .unwrap();
        }
        // Let the server's writes back up against the paused subscriber.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for n in 0..N {
            let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .unwrap_or_else(|_| panic!("message {n} of {N} never came"))
                .unwrap();
            assert_eq!(msg.payload.len(), body.len());
            msg.ack().unwrap();
        }
        slow.close().await;
        publisher.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}
