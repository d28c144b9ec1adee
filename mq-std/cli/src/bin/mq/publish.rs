//! `mq pub`: publishes a message, each line of stdin, or generated payloads,
//! keeping a window of publishes in flight.

use std::io::BufRead;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use mq_client::client::{Error, PubAck, PublishOptions, QoS};
use tokio::sync::mpsc;

use crate::daemon::Server;
use crate::fail::Fail;
use crate::qos::{parse_qos, qos_number};
use crate::window::Window;

#[derive(Debug, Args)]
#[command(override_usage = "mq pub [OPTIONS] <TOPIC> <MESSAGE | - | --size BYTES>")]
#[command(group(clap::ArgGroup::new("payload").required(true).args(["message", "size"])))]
pub struct PubArgs {
    /// 0: at most once; 1: at least once (waits for the broker to store every
    /// message).
    #[arg(long, default_value = "1", value_parser = parse_qos)]
    qos: QoS,
    /// How many times to publish the message (with `-`: each line).
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Publish a generated payload of this many bytes instead of a message.
    #[arg(long, value_name = "BYTES")]
    size: Option<usize>,
    /// Time to live, in milliseconds.
    #[arg(long, value_name = "MS")]
    ttl: Option<u64>,
    /// Priority, 0 to 255: higher is delivered first among the messages
    /// waiting in a subscription's queue.
    #[arg(long, default_value_t = 0)]
    priority: u8,
    /// Topic a reply should be published to.
    #[arg(long, value_name = "TOPIC")]
    reply_to: Option<String>,
    /// Publishes in flight at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    window: u32,
    /// Topic to publish to.
    topic: String,
    /// The message; `-` publishes each line of stdin as one message.
    message: Option<String>,
}

/// Where the payloads come from.
enum Source {
    /// The same payload, `left` more times.
    Fixed { payload: Bytes, left: u64 },
    /// Each line of stdin, `count` times.
    Lines {
        lines: mpsc::Receiver<std::io::Result<Vec<u8>>>,
        line: Bytes,
        left: u64,
        count: u64,
    },
}

impl Source {
    fn new(args: &PubArgs) -> Source {
        match (args.message.as_deref(), args.size) {
            (Some("-"), _) => Source::Lines {
                lines: read_lines(),
                line: Bytes::new(),
                left: 0,
                count: args.count,
            },
            (Some(message), _) => Source::Fixed {
                payload: Bytes::from(message.to_string()),
                left: args.count,
            },
            (None, size) => Source::Fixed {
                payload: Bytes::from(vec![b'x'; size.unwrap_or(0)]),
                left: args.count,
            },
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, Fail> {
        match self {
            Source::Fixed { payload, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                *left -= 1;
                Ok(Some(payload.clone()))
            }
            Source::Lines {
                lines,
                line,
                left,
                count,
            } => {
                while *left == 0 {
                    let Some(next) = lines.recv().await else {
                        return Ok(None);
                    };
                    let mut bytes = next.map_err(|e| Fail(format!("cannot read stdin: {e}")))?;
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                    *line = Bytes::from(bytes);
                    *left = *count;
                }
                *left -= 1;
                Ok(Some(line.clone()))
            }
        }
    }
}

/// The lines of stdin (without the newline), read on a thread of their own.
fn read_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(1024);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// What happened to the publishes.
#[derive(Default)]
struct Tally {
    published: u64,
    bytes: u64,
    failed: Option<Error>,
}

impl Tally {
    fn take(&mut self, result: Result<(PubAck, usize), Error>) {
        match result {
            Ok((_, len)) => {
                self.published += 1;
                self.bytes += len as u64;
            }
            Err(e) => {
                self.failed.get_or_insert(e);
            }
        }
    }
}

pub async fn run(server: &Server, args: PubArgs) -> Result<(), Fail> {
    let mut opts = PublishOptions::new(args.qos);
    opts.ttl = args.ttl.map(Duration::from_millis);
    opts.priority = args.priority;
    opts.reply_to = args.reply_to.clone();
    let mut source = Source::new(&args);
    let client = server.connect().await?;
    let started = Instant::now();
    let topic = args.topic.as_str();
    let mut tally = Tally::default();
    let mut window = Window::new(args.window as usize);
    let mut read_error = None;
    while tally.failed.is_none() {
        let payload = match source.next().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        if window.is_full()
            && let Some(result) = window.next().await
        {
            tally.take(result);
        }
        let (client, opts) = (&client, &opts);
        window
            .push(async move {
                let len = payload.len();
                client.publish(topic, payload, opts).await.map(|a| (a, len))
            })
            .await;
    }
    while let Some(result) = window.next().await {
        tally.take(result);
    }
    // Closing sends whatever is still queued (QoS 0 publishes) first.
    client.close().await;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = read_error {
        return Err(e);
    }
    if let Some(e) = tally.failed {
        let why = match e {
            Error::Rejected(reason) => format!("mqd rejected it: {reason}"),
            e => e.to_string(),
        };
        return Err(Fail(format!(
            "publish to {topic} failed: {why} ({} published before)",
            tally.published
        )));
    }
    let rate = if elapsed > 0.0 {
        tally.published as f64 / elapsed
    } else {
        0.0
    };
    eprintln!(
        "mq: published {} message{} ({} bytes) to {topic} at QoS {} in {elapsed:.3} s ({rate:.0} msg/s)",
        tally.published,
        if tally.published == 1 { "" } else { "s" },
        tally.bytes,
        qos_number(args.qos),
    );
    Ok(())
}
