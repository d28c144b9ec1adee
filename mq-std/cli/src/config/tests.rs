//! The configuration from files, environments and defaults, and what it says
//! about bad values.

use std::path::PathBuf;
use std::time::Duration;

use mq_core::broker::Overflow;
use mq_server::wal::{FsyncPolicy, WalOptions};

use super::*;

#[test]
fn defaults_need_no_file() {
    let c = FileConfig::default().resolve().unwrap();
    assert_eq!(c.listen.to_string(), mq_client::DEFAULT_ADDR);
    assert_eq!(c.http.unwrap().to_string(), mq_server::DEFAULT_HTTP_ADDR);
    assert_eq!(c.data_dir, PathBuf::from("./mq-data"));
    assert!(c.broker.auth.tokens.is_empty());
    assert_eq!(c.store, StoreConfig::Wal(WalOptions::default()));
    // A fast publisher is paced to its consumers; one that stops is shed.
    assert_eq!(
        c.broker.default_queue.overflow,
        Overflow::Pace {
            hold: Duration::from_secs(1)
        }
    );
    let f: FileConfig = toml::from_str("[queue]\noverflow = \"pace\"\nhold_ms = 250").unwrap();
    assert_eq!(
        f.resolve().unwrap().broker.default_queue.overflow,
        Overflow::Pace {
            hold: Duration::from_millis(250)
        }
    );
}

#[test]
fn store_section_and_its_environment() {
    let mut f: FileConfig = toml::from_str(
        r#"
        [store]
        fsync = "interval"
        fsync_interval_ms = 25
        segment_bytes = 65536
        max_bytes = 1048576
        compact_min_bytes = 262144
        "#,
    )
    .unwrap();
    let c = f.resolve().unwrap();
    assert_eq!(
        c.store,
        StoreConfig::Wal(WalOptions {
            fsync: FsyncPolicy::Interval(Duration::from_millis(25)),
            segment_bytes: 65536,
            max_bytes: Some(1 << 20),
            compact_min_bytes: 262144,
        })
    );
    let env = |k: &str| match k {
        "MQ_FSYNC" => Some("every".to_string()),
        "MQ_STORE_MAX_BYTES" => Some("0".to_string()),
        _ => None,
    };
    f.apply_env(env).unwrap();
    let StoreConfig::Wal(w) = f.resolve().unwrap().store else {
        panic!("a wal")
    };
    assert_eq!(w.fsync, FsyncPolicy::EveryRecords(1000));
    assert_eq!(w.max_bytes, None);
    f.apply_env(|k| (k == "MQ_STORE").then(|| "memory".to_string()))
        .unwrap();
    assert_eq!(f.resolve().unwrap().store, StoreConfig::Memory);
}

#[test]
fn file_then_environment() {
    let mut f: FileConfig = toml::from_str(
        r#"
        listen = "127.0.0.1:9000"
        http = ""
        max_frame = 65536
        [queue]
        max_messages = 5
        overflow = "block"
        block_ms = 250
        [[queues]]
        pattern = "telemetry.>"
        overflow = "drop-oldest"
        [[tokens]]
        token = "t"
        publish = ["a.>"]
        "#,
    )
    .unwrap();
    let env = |k: &str| match k {
        "MQ_LISTEN" => Some("127.0.0.1:9001".to_string()),
        "MQ_MAX_ATTEMPTS" => Some("3".to_string()),
        _ => None,
    };
    f.apply_env(env).unwrap();
    let c = f.resolve().unwrap();
    assert_eq!(c.listen.port(), 9001);
    assert!(c.http.is_none());
    assert_eq!(c.broker.limits.max_frame, 65536);
    assert_eq!(c.broker.max_attempts, 3);
    assert_eq!(c.broker.default_queue.max_messages, 5);
    assert_eq!(
        c.broker.default_queue.overflow,
        Overflow::Block {
            deadline: Duration::from_millis(250)
        }
    );
    assert_eq!(c.broker.queues[0].value.overflow, Overflow::DropOldest);
    assert_eq!(c.broker.queues[0].value.max_messages, 5);
    assert_eq!(c.broker.auth.tokens.len(), 1);
}

#[test]
fn serial_lines_one_or_many() {
    let parse = |toml: &str| {
        toml::from_str::<FileConfig>(toml)
            .unwrap()
            .resolve()
            .unwrap()
    };
    assert!(parse("").serial.is_empty());
    let c = parse("[serial]\npath = \"/dev/ttyUSB0\"");
    assert_eq!(
        c.serial,
        [SerialLine {
            path: "/dev/ttyUSB0".into(),
            baud: DEFAULT_BAUD
        }]
    );
    let c =
        parse("[[serial]]\npath = \"/dev/ttyS0\"\nbaud = 9600\n[[serial]]\npath = \"/dev/ttyS1\"");
    assert_eq!(c.serial.len(), 2);
    assert_eq!((c.serial[0].baud, c.serial[1].baud), (9600, DEFAULT_BAUD));
}

#[test]
fn bad_values_are_explained() {
    let bad = |toml: &str| {
        toml::from_str::<FileConfig>(toml)
            .map_err(|e| e.to_string())
            .and_then(|f| f.resolve().map_err(|e| e.to_string()))
            .unwrap_err()
    };
    assert!(bad("listen = \"nowhere\"").contains("host:port"));
    assert!(bad("[queue]\noverflow = \"explode\"").contains("drop-oldest"));
    assert!(bad("[[queues]]\nmax_messages = 1").contains("pattern"));
    assert!(bad("[[tokens]]\ntoken = \"t\"\npublish = [\"a.>.b\"]").contains("a.>.b"));
    assert!(bad("colour = \"blue\"").contains("colour"));
    assert!(bad("[store]\nfsync = \"sometimes\"").contains("interval"));
    assert!(bad("[store]\nkind = \"tape\"").contains("memory"));
    assert!(bad("[store]\nsegment_bytes = 10").contains("segment_bytes"));
    assert!(bad("[serial]\npath = \"/dev/x\"\nbaud = 0").contains("baud"));
    assert!(bad("[serial]\npath = \"/dev/x\"\nparity = \"odd\"").contains("parity"));
    assert!(bad("[serial]\nbaud = 9600").contains("path"));
    assert!(bad("serial = 3").contains("serial"));
    let mut f = FileConfig::default();
    let e = f
        .apply_env(|k| (k == "MQ_MAX_FRAME").then(|| "lots".to_string()))
        .unwrap_err();
    assert!(e.to_string().contains("MQ_MAX_FRAME"));
}

#[test]
fn mqtt_is_off_unless_configured() {
    let off = FileConfig::default().resolve().unwrap();
    assert_eq!(off.mqtt, None);
    let f: FileConfig = toml::from_str("[mqtt]\nlisten = \"127.0.0.1:1883\"").unwrap();
    assert_eq!(
        f.resolve().unwrap().mqtt,
        Some("127.0.0.1:1883".parse().unwrap())
    );
    let mut f = FileConfig::default();
    f.apply_env(|k| (k == "MQ_MQTT").then(|| "127.0.0.1:0".to_string()))
        .unwrap();
    assert_eq!(
        f.resolve().unwrap().mqtt,
        Some("127.0.0.1:0".parse().unwrap())
    );
    let bad: FileConfig = toml::from_str("[mqtt]\nlisten = \"port 1883\"").unwrap();
    assert!(bad.resolve().unwrap_err().to_string().contains("mqtt"));
}

#[test]
fn nats_is_off_unless_configured() {
    let off: FileConfig = toml::from_str("").unwrap();
    assert_eq!(off.resolve().unwrap().nats, None);
    let f: FileConfig = toml::from_str("[nats]\nlisten = \"127.0.0.1:4222\"").unwrap();
    assert_eq!(
        f.resolve().unwrap().nats,
        Some("127.0.0.1:4222".parse().unwrap())
    );
    let mut f = FileConfig::default();
    f.apply_env(|k| (k == "MQ_NATS").then(|| "127.0.0.1:0".to_string()))
        .unwrap();
    assert_eq!(
        f.resolve().unwrap().nats,
        Some("127.0.0.1:0".parse().unwrap())
    );
    let empty: FileConfig = toml::from_str("[nats]\nlisten = \"\"").unwrap();
    assert_eq!(empty.resolve().unwrap().nats, None);
    let bad: FileConfig = toml::from_str("[nats]\nlisten = \"port 4222\"").unwrap();
    assert!(bad.resolve().unwrap_err().to_string().contains("nats"));
}

#[test]
fn tls_listeners_identities_and_their_environment() {
    let mut f: FileConfig = toml::from_str(
        r#"
        listen_tls = "127.0.0.1:7443"
        [mqtt]
        listen_tls = "127.0.0.1:8883"
        [tls]
        cert = "server.pem"
        key = "server.key"
        client_ca = "clients.pem"
        [[identities]]
        identity = "sensor-17"
        publish = ["dev.{identity}.>"]
        subscribe = ["dev.{client_id}.cmd"]
        "#,
    )
    .unwrap();
    f.apply_env(|k| (k == "MQ_HTTP_TLS").then(|| "127.0.0.1:7444".to_string()))
        .unwrap();
    let c = f.resolve().unwrap();
    assert_eq!(c.listen_tls.unwrap().port(), 7443);
    assert_eq!(c.mqtt_tls.unwrap().port(), 8883);
    assert_eq!(c.http_tls.unwrap().port(), 7444);
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert, PathBuf::from("server.pem"));
    assert!(
        tls.require_client_cert,
        "a client CA requires certificates by default"
    );
    assert_eq!(c.broker.auth.identities.len(), 1);
    assert_eq!(c.broker.auth.identities[0].1.publish, ["dev.{identity}.>"]);
    assert_eq!(c.reload_watch, None);
}

#[test]
fn tls_mistakes_are_explained() {
    let bad = |text: &str| {
        let f: FileConfig = toml::from_str(text).unwrap();
        f.resolve().unwrap_err().to_string()
    };
    assert!(bad("listen_tls = \"127.0.0.1:7443\"").contains("needs [tls] cert and key"));
    assert!(bad("[tls]\ncert = \"a.pem\"").contains("both cert and key"));
    assert!(
        bad("[tls]\ncert = \"a\"\nkey = \"b\"\nrequire_client_cert = true").contains("client_ca")
    );
    assert!(
        bad("[[identities]]\nidentity = \"x\"\npublish = [\"a.>.b\"]")
            .contains("identity publish filter")
    );
}

#[test]
fn node_section_its_environment_and_its_checks() {
    assert!(FileConfig::default().resolve().unwrap().node.is_none());
    let mut f: FileConfig = toml::from_str(
        r#"
        [node]
        id = "east-1"
        catalog = "sqlite:/tmp/mesh.db"
        lease_ms = 3000
        "#,
    )
    .unwrap();
    let node = f.resolve().unwrap().node.unwrap();
    assert_eq!(node.id, "east-1");
    assert_eq!(node.catalog, "sqlite:/tmp/mesh.db");
    assert_eq!(node.lease, Duration::from_secs(3));
    assert_eq!(node.heartbeat, Duration::from_millis(600));
    assert_eq!(node.call_timeout, None);
    assert_eq!(node.call_timeout_or_default(), Duration::from_millis(1_500));
    assert_eq!(node.advertise, None);
    f.apply_env(|k| match k {
        "MQ_NODE" => Some("west-2".into()),
        "MQ_ADVERTISE" => Some("10.0.0.5:7410".into()),
        "MQ_NODE_TOKEN" => Some("mesh".into()),
        _ => None,
    })
    .unwrap();
    let node = f.resolve().unwrap().node.unwrap();
    assert_eq!(node.id, "west-2");
    assert_eq!(node.advertise.as_deref(), Some("10.0.0.5:7410"));
    assert_eq!(node.token.as_deref(), Some("mesh"));

    for (toml, says) in [
        ("[node]\nid = \"a\"", "needs a catalog"),
        ("[node]\ncatalog = \"sqlite:x\"", "needs a node id"),
        (
            "[node]\nid = \"a\"\ncatalog = \"sqlite:x\"\nlease_ms = 1000\nheartbeat_ms = 1000",
            "shorter than lease_ms",
        ),
        (
            "[node]\nid = \"a\"\ncatalog = \"sqlite:x\"\nlease_ms = 1000\ncall_timeout_ms = 1000",
            "call_timeout_ms (1s) must be positive and shorter than lease_ms",
        ),
    ] {
        let f: FileConfig = toml::from_str(toml).unwrap();
        let e = f.resolve().unwrap_err().to_string();
        assert!(e.contains(says), "{toml}: {e}");
    }
    let f: FileConfig =
        toml::from_str("[node]\nid = \"a\"\ncatalog = \"sqlite:x\"\ncall_timeout_ms = 250")
            .unwrap();
    let node = f.resolve().unwrap().node.unwrap();
    assert_eq!(node.call_timeout, Some(Duration::from_millis(250)));
}

#[test]
fn topics_that_keep_nothing_are_forgotten_and_reply_topics_keep_nothing() {
    use mq_core::topic::Topic;
    let topic = |t| Topic::new(t).unwrap();
    let c = FileConfig::default().resolve().unwrap().broker;
    let minute = Some(Duration::from_secs(60));
    assert_eq!(c.retention_for(topic("orders.eu")).forget_after, minute);
    assert_eq!(c.retention_for(topic("orders.eu")).max_messages, 1_000);
    let inbox = c.retention_for(topic("_INBOX.x.1"));
    assert_eq!(
        (inbox.max_messages, inbox.forget_after),
        (0, Some(Duration::from_secs(1)))
    );
    let reply = c.retention_for(topic("_reply.client-7"));
    assert_eq!((reply.max_messages, reply.forget_after), (0, minute));
    // The file's rules come first; 0 forgets never.
    let f: FileConfig = toml::from_str(
        r#"
        [retention]
        forget_after_ms = 0

        [[retention_rules]]
        pattern = "_INBOX.>"
        max_messages = 5
        forget_after_ms = 30000
        "#,
    )
    .unwrap();
    let c = f.resolve().unwrap().broker;
    assert_eq!(c.retention_for(topic("orders.eu")).forget_after, None);
    let inbox = c.retention_for(topic("_INBOX.x.1"));
    assert_eq!(
        (inbox.max_messages, inbox.forget_after),
        (5, Some(Duration::from_secs(30)))
    );
    let reply = c.retention_for(topic("_reply.c"));
    assert_eq!((reply.max_messages, reply.forget_after), (0, None));
}
