//! `mqd --nats` typed at as a person would with telnet: the answers come as
//! text, verbose `+OK` until `CONNECT` turns it off, and a malformed line
//! gets `-ERR` and a close while the daemon keeps serving everyone else.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mq_testkit::Mqd;

const WAIT: Duration = Duration::from_secs(10);

/// A terminal connected to mqd's NATS port.
struct Terminal {
    stream: TcpStream,
    /// What arrived and was not yet looked at.
    seen: Vec<u8>,
}

impl Terminal {
    /// Connects and reads the `INFO` line.
    fn open(at: SocketAddr) -> Terminal {
        let stream = TcpStream::connect(at).expect("mqd's NATS port accepts");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut t = Terminal {
            stream,
            seen: Vec::new(),
        };
        let info = t.line();
        assert!(
            info.starts_with("INFO {") && info.contains("\"max_payload\":"),
            "{info}"
        );
        t
    }

    fn typed(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    /// Reads until `want` arrived (and returns what came, up to it), or
    /// panics with what did come.
    fn expect(&mut self, want: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if let Some(at) = text.find(want) {
                self.seen.drain(..at + want.len());
                return text[..at + want.len()].to_string();
            }
            assert!(
                Instant::now() < deadline,
                "waited for {want:?}, got {text:?}"
            );
            if !self.read_some() {
                panic!("closed while waiting for {want:?}, got {text:?}");
            }
        }
    }

    /// One line (without CRLF).
    fn line(&mut self) -> String {
        let line = self.expect("\r\n");
        line.trim_end_matches("\r\n").to_string()
    }

    /// Nothing more arrives for a while.
    fn quiet(&mut self) {
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            self.read_some();
        }
        assert!(
            self.seen.is_empty(),
            "unexpected: {:?}",
            String::from_utf8_lossy(&self.seen)
        );
    }

    /// Reads what is there; false once the connection is closed.
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.seen.extend_from_slice(&buf[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for the daemon to close the connection; returns what came last.
    fn closed(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        while self.read_some() {
            assert!(Instant::now() < deadline, "not closed");
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.seen)).into_owned()
    }
}

#[test]
fn a_person_types_at_mqd() {
    let mqd = Mqd::builder("").nats().start();
    let nats = mqd.nats.expect("a NATS address");
    let mut t = Terminal::open(nats);
    // No CONNECT: verbose, as nats-server is.
    t.typed("PUB orders 5\r\nhello\r\n");
    assert_eq!(t.line(), "+OK");
    t.typed("SUB orders 1\r\n");
    assert_eq!(t.line(), "+OK");
    t.typed("PUB orders 5\r\nhello\r\n");
    assert_eq!(t.line(), "+OK");
    assert_eq!(t.line(), "MSG orders 1 5");
    assert_eq!(t.line(), "hello");
    t.typed("PING\r\n");
    assert_eq!(t.line(), "PONG");
    // Wildcards and a queue group, from a second terminal.
    let mut other = Terminal::open(nats);
    other.typed("CONNECT {\"verbose\":false}\r\nSUB orders.* workers 7\r\nPING\r\n");
    assert_eq!(other.line(), "PONG");
    t.typed("PUB orders.eu 2\r\nhi\r\n");
    assert_eq!(t.line(), "+OK");
    assert_eq!(other.line(), "MSG orders.eu 7 2");
    assert_eq!(other.line(), "hi");
    t.quiet();
}

#[test]
fn a_malformed_line_ends_one_connection_and_mqd_serves_on() {
    let mqd = Mqd::builder("").nats().start();
    let nats = mqd.nats.expect("a NATS address");
    let mut listener = Terminal::open(nats);
    listener.typed("CONNECT {\"verbose\":false}\r\nSUB news.> 1\r\nPING\r\n");
    assert_eq!(listener.line(), "PONG");
    for (typed, said) in [
        ("FOO bar\r\n", "-ERR 'Unknown Protocol Operation'\r\n"),
        (
            "PUB news x\r\n",
            "-ERR 'Invalid Arguments: PUB <subject> [reply] <size>'\r\n",
        ),
        (
            "PUB news 3\r\nhello\r\n",
            "-ERR 'Unknown Protocol Operation'\r\n",
        ),
        (
            "PUB news 99999999\r\n",
            "-ERR 'Maximum Payload Violation'\r\n",
        ),
    ] {
        let mut bad = Terminal::open(nats);
        bad.typed(typed);
        assert_eq!(bad.closed(), said, "after {typed:?}");
        // Someone else publishes; the listener still gets it.
        let mut publisher = Terminal::open(nats);
        publisher.typed("CONNECT {\"verbose\":false}\r\nPUB news.today 2\r\nok\r\nPING\r\n");
        assert_eq!(publisher.line(), "PONG");
        assert_eq!(listener.line(), "MSG news.today 1 2");
        assert_eq!(listener.line(), "ok");
    }
    // A subject mq cannot take is refused, and that connection stays.
    listener.typed("SUB a..b 2\r\nPING\r\n");
    assert_eq!(listener.line(), "-ERR 'Invalid Subject'");
    assert_eq!(listener.line(), "PONG");
}

#[test]
fn tokens_guard_the_nats_port() {
    let config = r#"
[[tokens]]
token = "s3cret"
publish = ["orders.>"]
subscribe = ["orders.>"]
"#;
    let mqd = Mqd::builder(config).nats().start();
    let nats = mqd.nats.expect("a NATS address");
    let mut anonymous = Terminal::open(nats);
    anonymous.typed("SUB orders.> 1\r\n");
    assert_eq!(anonymous.closed(), "-ERR 'Authorization Violation'\r\n");
    let mut t = Terminal::open(nats);
    t.typed("CONNECT {\"verbose\":false,\"auth_token\":\"s3cret\"}\r\nPUB payments 1\r\nx\r\n");
    assert_eq!(
        t.line(),
        "-ERR 'Permissions Violation for Publish to \"payments\"'"
    );
    t.typed("SUB orders.> 1\r\nPUB orders.eu 1\r\nx\r\n");
    assert_eq!(t.line(), "MSG orders.eu 1 1");
}

#[test]
fn a_message_of_max_payload_goes_through() {
    let mqd = Mqd::builder("").nats().start();
    let nats = mqd.nats.expect("a NATS address");
    let mut sub = Terminal::open(nats);
    sub.typed("CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n");
    assert_eq!(sub.line(), "PONG");
    let mut publisher = Terminal::open(nats);
    let payload = "x".repeat(1024 * 1024);
    publisher.typed(&format!(
        "CONNECT {{\"verbose\":false}}\r\nPUB big {}\r\n{payload}\r\nPING\r\n",
        payload.len()
    ));
    assert_eq!(publisher.line(), "PONG");
    assert_eq!(sub.line(), "MSG big 1 1048576");
    let got = sub.line();
    assert!(got == payload, "payload of {} bytes", got.len());
}

/// NATS request-reply replies to a subject of its own per request: mqd
/// keeps nothing on `_INBOX.` topics and forgets each a second after its
/// reply, so the topics it holds are the recent ones, not one per request
/// ever made (at 1,000 requests a second for an hour: 3.6 million).
#[test]
fn reply_subjects_are_forgotten_after_their_reply() {
    let mqd = Mqd::builder("").nats().start();
    let nats = mqd.nats.expect("a NATS address");
    let mut service = Terminal::open(nats);
    service.typed("CONNECT {\"verbose\":false}\r\nSUB svc 1\r\nPING\r\n");
    assert_eq!(service.line(), "PONG");
    let mut client = Terminal::open(nats);
    client.typed("CONNECT {\"verbose\":false}\r\nSUB _INBOX.x.* 1\r\nPING\r\n");
    assert_eq!(client.line(), "PONG");
    const REQUESTS: u32 = 200;
    for n in 0..REQUESTS {
        client.typed(&format!("PUB svc _INBOX.x.{n} 2\r\nhi\r\n"));
        assert_eq!(service.line(), format!("MSG svc 1 _INBOX.x.{n} 2"));
        assert_eq!(service.line(), "hi");
        service.typed(&format!("PUB _INBOX.x.{n} 2\r\nok\r\n"));
        assert_eq!(client.line(), format!("MSG _INBOX.x.{n} 1 2"));
        assert_eq!(client.line(), "ok");
    }
    // The sweep runs each second: forgotten after one to two seconds idle
    // (some may be already). `svc` keeps its message and stays.
    let deadline = Instant::now() + WAIT;
    while mqd.metric("mq_topics") > 1 {
        assert!(Instant::now() < deadline, "reply topics kept");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mqd.metric("mq_topics_forgotten_total"), u64::from(REQUESTS));
    // A request after that is answered as before.
    client.typed("PUB svc _INBOX.x.0 2\r\nhi\r\n");
    assert_eq!(service.line(), "MSG svc 1 _INBOX.x.0 2");
    assert_eq!(service.line(), "hi");
    service.typed("PUB _INBOX.x.0 2\r\nok\r\n");
    assert_eq!(client.line(), "MSG _INBOX.x.0 1 2");
}
