//! The `mq` command line against a real `mqd` child process. Every `mq` run has
//! a deadline: it is killed and the test fails if it does not exit in time.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;
use support::*;

/// An address nothing listens on.
fn dead_addr() -> String {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// `topic seq payload` split apart.
fn fields(line: &str) -> (&str, u64, &str) {
    let mut parts = line.splitn(3, ' ');
    let topic = parts.next().unwrap();
    let seq = parts.next().unwrap().parse().unwrap();
    (topic, seq, parts.next().unwrap_or_default())
}

#[test]
fn pub_then_sub_from_the_start_sees_the_messages() {
    let mqd = Mqd::start("");
    let run = mq(&mqd, &["pub", "cli.greet", "hello world", "--count", "3"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("published 3 messages") && run.stderr.contains("cli.greet"),
        "{run:?}"
    );
    // The daemon's address from the flag instead of the environment.
    let run = start(
        None,
        &["--server", &mqd.addr.to_string(), "pub", "cli.greet", "bye"],
        b"",
    )
    .wait();
    run.assert_ok();

    let run = mq(&mqd, &["sub", "--from", "0", "--count", "4", "cli.greet"]);
    run.assert_ok();
    let got: Vec<_> = run.lines().into_iter().map(fields).collect();
    assert_eq!(
        got,
        [
            ("cli.greet", 1, "hello world"),
            ("cli.greet", 2, "hello world"),
            ("cli.greet", 3, "hello world"),
            ("cli.greet", 4, "bye"),
        ]
    );
    // Every printed message was acked before the exit.
    assert_eq!(eventually(&mqd, "mq_acked_total", 4), 4);

    let run = mq(&mqd, &["sub", "--last", "1", "--count", "1", "cli.greet"]);
    assert_eq!(run.assert_ok().lines(), ["cli.greet 4 bye"]);
}

#[test]
fn sub_started_first_receives_each_line_of_stdin() {
    let mqd = Mqd::start("");
    let sub = start(Some(&mqd), &["sub", "--count", "4", "cli.lines.*"], b"");
    wait_for_subscriptions(&mqd, 1);
    let input = b"one\ntwo words\r\n\xff\xfe binary \\ end\n\n";
    let run = start(Some(&mqd), &["pub", "cli.lines.in", "-"], input).wait();
    run.assert_ok();
    assert!(run.stderr.contains("published 4 messages"), "{run:?}");
    let run = sub.wait();
    let payloads: Vec<&str> = run
        .assert_ok()
        .lines()
        .iter()
        .map(|l| fields(l).2)
        .collect();
    assert_eq!(
        payloads,
        ["one", "two words", "\\xff\\xfe binary \\\\ end", ""]
    );
}

#[test]
fn sub_json_output_parses() {
    let mqd = Mqd::start("");
    mq(
        &mqd,
        &[
            "pub",
            "cli.json",
            "{\"temp\": 21.5}",
            "--reply-to",
            "cli.answers",
            "--ttl",
            "60000",
            "--priority",
            "7",
        ],
    )
    .assert_ok();
    mq(&mqd, &["pub", "--qos", "0", "--size", "1000", "cli.json"]).assert_ok();
    start(Some(&mqd), &["pub", "cli.json", "-"], b"\xff\x00\n")
        .wait()
        .assert_ok();

    let run = mq(
        &mqd,
        &["sub", "--json", "--from", "0", "--count", "3", "cli.json"],
    );
    let msgs: Vec<Value> = run
        .assert_ok()
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(msgs.len(), 3);
    let first = &msgs[0];
    assert_eq!(first["topic"], "cli.json");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["attempt"], 1);
    assert_eq!(first["payload"], "{\"temp\": 21.5}");
    assert_eq!(first["reply_to"], "cli.answers");
    assert_eq!(first["ttl_ms"], 60000);
    assert_eq!(first["priority"], 7);
    assert_eq!(first["headers"], Value::Array(Vec::new()));
    assert!(first["correlation"].is_null());
    assert_eq!(msgs[1]["payload"].as_str().unwrap(), "x".repeat(1000));
    assert_eq!(msgs[1]["reply_to"], Value::Null);
    assert_eq!(msgs[2]["payload_base64"], "/wA=");
    assert!(msgs[2].get("payload").is_none());
}

#[test]
fn stat_prints_counters_and_queue_depths() {
    let mqd = Mqd::start("");
    mq(&mqd, &["pub", "cli.stat.a", "x", "--count", "5"]).assert_ok();
    let sub = start(Some(&mqd), &["sub", "--count", "1", "cli.stat.>"], b"");
    wait_for_subscriptions(&mqd, 1);

    let run = mq(&mqd, &["stat"]);
    let lines = run.assert_ok().lines();
    let value = |name: &str| -> u64 {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name).filter(|v| v.starts_with(' ')))
            .unwrap_or_else(|| panic!("{name} missing: {run:?}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(value("mq_messages_in_total"), 5);
    assert_eq!(value("mq_subscriptions"), 1);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("mq_queue_depth{") && l.contains("filter=\"cli.stat.>\"")),
        "{run:?}"
    );
    // An aligned table: every value ends in the same column.
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{run:?}");

    mq(&mqd, &["pub", "cli.stat.b", "done"]).assert_ok();
    assert_eq!(sub.wait().assert_ok().lines(), ["cli.stat.b 1 done"]);
}

#[test]
fn rejected_publishes_and_refused_tokens_fail_with_the_reason() {
    let mqd = Mqd::start(
        r#"
        [[tokens]]
        token = "s3cret"
        publish = ["sensors.>"]
        subscribe = ["sensors.>"]
        "#,
    );
    mq(
        &mqd,
        &["--token", "s3cret", "pub", "sensors.kitchen", "21.5"],
    )
    .assert_ok();
    let run = mq(
        &mqd,
        &["--token", "s3cret", "pub", "actuators.door", "open"],
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        run.stderr
            .starts_with("mq: publish to actuators.door failed: mqd rejected it: not authorized"),
        "{run:?}"
    );

    let run = mq(&mqd, &["--token", "wrong", "pub", "sensors.kitchen", "x"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!("mq: mqd at {} refused the connection: bad token", mqd.addr)
    );
}

#[test]
fn unreachable_daemon_and_bad_arguments_fail_clearly() {
    let addr = dead_addr();
    let run = start(None, &["--server", &addr, "pub", "t", "x"], b"").wait();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        run.stderr
            .starts_with(&format!("mq: cannot reach mqd at {addr}: ")),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");

    let run = start(None, &["--server", &addr, "sub", "t"], b"").wait();
    assert_eq!(run.status.code(), Some(1), "{run:?}");

    let http = dead_addr();
    let run = start(None, &["stat", "--http", &http], b"").wait();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        run.stderr
            .starts_with(&format!("mq: cannot read metrics from mqd at {http}: ")),
        "{run:?}"
    );

    for args in [
        &["pub", "t"][..],
        &["pub", "--qos", "2", "t", "x"],
        &["sub", "--from", "1", "--last", "2", "t"],
        &["bench", "--size", "4"],
        &["frobnicate"],
    ] {
        let run = start(None, args, b"").wait();
        assert_eq!(run.status.code(), Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:?}");
    }
}

#[test]
fn bench_reports_what_it_measured() {
    let mqd = Mqd::start("");
    let run = mq(
        &mqd,
        &[
            "bench",
            "--duration",
            "0.5",
            "--subscribers",
            "2",
            "--topics",
            "3",
            "--qos",
            "1",
        ],
    );
    run.assert_ok();
    let line = |prefix: &str| {
        run.lines()
            .into_iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line: {run:?}"))
            .to_string()
    };
    assert!(line("published").contains("msg/s"), "{run:?}");
    let delivered = line("delivered");
    assert!(delivered.contains("missing 0)"), "{run:?}");
    assert!(line("latency").contains("p99.9"), "{run:?}");
    // Nothing of the run is left subscribed.
    assert_eq!(eventually(&mqd, "mq_subscriptions", 0), 0);
}

#[test]
fn a_reader_that_went_away_ends_the_output_not_the_process() {
    // `mq bench ... | head -1`, with `head` gone before the first line: no
    // panic, and the run still ends well (nothing is left subscribed).
    let mqd = Mqd::start("");
    for args in [
        &["bench", "--duration", "0.3", "--subscribers", "1"][..],
        &["topics"][..],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mq"))
            .args(args)
            .env("MQ_SERVER", mqd.addr.to_string())
            .env("MQ_HTTP", mqd.http.to_string())
            .env_remove("MQ_TOKEN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let stderr = reader(child.stderr.take().unwrap());
        let deadline = std::time::Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                panic!("mq {args:?} did not exit");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let stderr = stderr.join().unwrap();
        assert!(status.success(), "mq {args:?}: {status:?} {stderr}");
        assert!(!stderr.contains("panicked"), "mq {args:?}: {stderr}");
    }
    assert_eq!(eventually(&mqd, "mq_subscriptions", 0), 0);
}

#[test]
fn stat_counts_mqtt_connections() {
    let mqd = Mqd::builder("").mqtt().start();
    let mut device = std::net::TcpStream::connect(mqd.mqtt.expect("an MQTT address")).unwrap();
    // MQTT 3.1.1 CONNECT, clean session, keep alive 30 s, client id "x".
    device
        .write_all(&[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 1, b'x',
        ])
        .unwrap();
    let mut connack = [0u8; 4];
    device.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let run = mq(&mqd, &["stat"]);
    let lines = run.assert_ok().lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("mq_mqtt_connections ") && l.ends_with(" 1")),
        "{run:?}"
    );
}

#[test]
fn stat_counts_nats_connections() {
    let mqd = Mqd::builder("").nats().start();
    let mut person = std::net::TcpStream::connect(mqd.nats.expect("a NATS address")).unwrap();
    person.write_all(b"PING\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.ends_with(b"PONG\r\n") {
        let n = person.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let run = mq(&mqd, &["stat"]);
    let lines = run.assert_ok().lines();
    for (name, value) in [
        ("mq_nats_connections", " 1"),
        ("mq_nats_connections_total", " 1"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name} ")) && l.ends_with(value)),
            "{name}: {run:?}"
        );
    }
}
