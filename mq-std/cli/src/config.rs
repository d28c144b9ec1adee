//! `mqd`'s configuration: an optional TOML file, overridden by `MQ_*` environment
//! variables, overridden by command-line flags. With nothing at all, the embedded
//! defaults run a broker on `127.0.0.1:7410` with its data under `./mq-data`.
//!
//! ```toml
//! listen = "127.0.0.1:7410"      # MQ_LISTEN
//! http = "127.0.0.1:7411"        # MQ_HTTP: /metrics and /health ("" disables)
//! data_dir = "./mq-data"         # MQ_DATA_DIR
//! log = "info"                   # MQ_LOG (tracing filter syntax)
//! max_connections = 10000        # MQ_MAX_CONNECTIONS
//! max_frame = 1048576            # MQ_MAX_FRAME (bytes)
//! max_message = 67108864         # MQ_MAX_MESSAGE (bytes)
//! connection_memory = 4194304    # MQ_CONNECTION_MEMORY (bytes buffered per connection)
//! keepalive_ms = 30000           # MQ_KEEPALIVE_MS
//! credit = 256                   # MQ_CREDIT (default per subscription)
//! ack_timeout_ms = 30000         # MQ_ACK_TIMEOUT_MS (0: wait for the connection to end)
//! max_attempts = 10              # MQ_MAX_ATTEMPTS (then dead-letter)
//! shutdown_timeout_ms = 5000     # MQ_SHUTDOWN_TIMEOUT_MS
//!
//! [queue]                        # every subscription's queue, unless a rule matches
//! max_messages = 10000
//! max_bytes = 67108864
//! overflow = "reject"            # "reject" | "drop-oldest" | "block"
//! block_ms = 5000                # how long "block" holds a publisher
//!
//! [[queues]]                     # rules, first match on the subscription filter wins
//! pattern = "telemetry.>"
//! max_messages = 1000
//! overflow = "drop-oldest"
//!
//! [retention]                    # per topic, for replay
//! max_messages = 1000
//! max_bytes = 16777216
//! max_age_ms = 0                 # 0: no age limit
//!
//! [[retention_rules]]            # first match on the topic wins
//! pattern = "audit.>"
//! max_messages = 100000
//!
//! [[tokens]]                     # none: anyone may do anything
//! token = "s3cret"
//! publish = ["sensors.>"]
//! subscribe = ["cmd.dev1.>"]
//!
//! [store]                        # the write-ahead log in data_dir (see mq_std::wal)
//! kind = "wal"                   # MQ_STORE: "wal" | "memory" (keep nothing on disk:
//!                                #   messages live only as long as the process)
//! fsync = "always"               # MQ_FSYNC: "always" | "interval" | "every" | "never"
//!                                #   always: before acknowledging (group commit);
//!                                #   the others acknowledge before the fsync and are
//!                                #   durable against a crash of mqd, not of the machine
//! fsync_interval_ms = 10         # "interval": at most this long between fsyncs
//! fsync_every = 1000             # "every": at most this many records between fsyncs
//! segment_bytes = 16777216       # a segment file is closed at this size
//! max_bytes = 0                  # MQ_STORE_MAX_BYTES: at this disk use, QoS 1
//!                                #   publishes are refused (StorageFull); 0: no limit
//! compact_min_bytes = 67108864   # no compaction below this disk use
//!
//! [serial]                       # a device on a serial line (mq_std::serial);
//! path = "/dev/ttyUSB0"          #   [[serial]] for several; `--serial PATH` adds
//! baud = 115200                  #   one more (at 115200 baud). Unix only.
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mq_core::broker::{self, Auth, Overflow, Permissions, QueueLimits, Retention, Rule};
use mq_core::topic::Filter;
use mq_core::wire::Limits;
use serde::{Deserialize, Deserializer};

use mq_server::wal::{FsyncPolicy, WalOptions};

/// Why the configuration could not be used.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// A queue bound as written in the file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    /// Filter pattern (rules only).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Most messages waiting or in flight.
    pub max_messages: Option<usize>,
    /// Most payload bytes.
    pub max_bytes: Option<usize>,
    /// `reject`, `drop-oldest` or `block`.
    pub overflow: Option<String>,
    /// How long `block` holds a publisher, in milliseconds.
    pub block_ms: Option<u64>,
}

/// Retention as written in the file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Topic pattern (rules only).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Most messages kept per topic.
    pub max_messages: Option<usize>,
    /// Most payload bytes kept per topic.
    pub max_bytes: Option<usize>,
    /// Oldest message kept, in milliseconds; 0 for no limit.
    pub max_age_ms: Option<u64>,
}

/// A token and what it may do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// The secret.
    pub token: String,
    /// Topic filters it may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Filters it may subscribe within.
    #[serde(default)]
    pub subscribe: Vec<String>,
}

/// The `[store]` section as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `wal` (the default) or `memory`.
    pub kind: Option<String>,
    /// `always`, `interval`, `every` or `never`.
    pub fsync: Option<String>,
    /// For `interval`: the longest time between fsyncs, in milliseconds.
    pub fsync_interval_ms: Option<u64>,
    /// For `every`: the most records between fsyncs.
    pub fsync_every: Option<u64>,
    /// Size at which a segment file is closed.
    pub segment_bytes: Option<u64>,
    /// Disk use at which QoS 1 publishes are refused; 0 for no limit.
    pub max_bytes: Option<u64>,
    /// No compaction below this disk use.
    pub compact_min_bytes: Option<u64>,
}

/// A `[serial]` section: a serial line `mqd` serves.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SerialSection {
    /// The terminal device (`/dev/ttyUSB0`, a pseudo-terminal, ...).
    pub path: PathBuf,
    /// Baud rate; 115200 if not given.
    pub baud: Option<u32>,
}

/// `[serial]` (one table) or `[[serial]]` (an array of them).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SerialSection>, D::Error> {
    let value = toml::Value::deserialize(d)?;
    match value {
        toml::Value::Table(_) => value.try_into().map(|one| vec![one]),
        _ => value.try_into(),
    }
    .map_err(serde::de::Error::custom)
}

/// The configuration file's contents (every field optional).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Broker address.
    pub listen: Option<String>,
    /// HTTP address for `/metrics` and `/health`; empty disables it.
    pub http: Option<String>,
    /// Where the write-ahead log lives.
    pub data_dir: Option<PathBuf>,
    /// Log filter.
    pub log: Option<String>,
    /// Most connections at once.
    pub max_connections: Option<usize>,
    /// Largest frame accepted.
    pub max_frame: Option<u32>,
    /// Largest message accepted.
    pub max_message: Option<usize>,
    /// Bytes buffered per connection (input not yet consumed plus output queued).
    pub connection_memory: Option<usize>,
    /// Keepalive in milliseconds.
    pub keepalive_ms: Option<u32>,
    /// Default credit per subscription.
    pub credit: Option<u32>,
    /// Ack deadline in milliseconds; 0 disables it.
    pub ack_timeout_ms: Option<u64>,
    /// Deliveries before dead-lettering.
    pub max_attempts: Option<u16>,
    /// How long a graceful shutdown may take.
    pub shutdown_timeout_ms: Option<u64>,
    /// Default queue bounds.
    pub queue: Option<QueueSection>,
    /// Queue rules.
    #[serde(default)]
    pub queues: Vec<QueueSection>,
    /// Default retention.
    pub retention: Option<RetentionSection>,
    /// Retention rules.
    #[serde(default, rename = "retention_rules")]
    pub retention_rules: Vec<RetentionSection>,
    /// Auth tokens.
    #[serde(default)]
    pub tokens: Vec<TokenSection>,
    /// Where records are kept.
    pub store: Option<StoreSection>,
    /// Serial lines to serve.
    #[serde(default, deserialize_with = "one_or_many")]
    pub serial: Vec<SerialSection>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read config {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| err(format!("config {}: {e}", path.display())))
    }

    /// Applies `MQ_*` variables from `env` (a lookup, so tests need not touch the
    /// process environment).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| err(format!("{name}={v:?} is not a valid number")))
        }
        if let Some(v) = env("MQ_LISTEN") {
            self.listen = Some(v);
        }
        if let Some(v) = env("MQ_HTTP") {
            self.http = Some(v);
        }
        if let Some(v) = env("MQ_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = env("MQ_LOG") {
            self.log = Some(v);
        }
        if let Some(v) = env("MQ_STORE") {
            self.store.get_or_insert_with(Default::default).kind = Some(v);
        }
        if let Some(v) = env("MQ_FSYNC") {
            self.store.get_or_insert_with(Default::default).fsync = Some(v);
        }
        if let Some(v) = env("MQ_STORE_MAX_BYTES") {
            self.store.get_or_insert_with(Default::default).max_bytes =
                Some(num("MQ_STORE_MAX_BYTES", v)?);
        }
        macro_rules! numeric {
            ($($var:literal => $field:ident),* $(,)?) => {$(
                if let Some(v) = env($var) {
                    self.$field = Some(num($var, v)?);
                }
            )*};
        }
        numeric!(
            "MQ_MAX_CONNECTIONS" => max_connections,
            "MQ_MAX_FRAME" => max_frame,
            "MQ_MAX_MESSAGE" => max_message,
            "MQ_CONNECTION_MEMORY" => connection_memory,
            "MQ_KEEPALIVE_MS" => keepalive_ms,
            "MQ_CREDIT" => credit,
            "MQ_ACK_TIMEOUT_MS" => ack_timeout_ms,
            "MQ_MAX_ATTEMPTS" => max_attempts,
            "MQ_SHUTDOWN_TIMEOUT_MS" => shutdown_timeout_ms,
        );
        Ok(())
    }
}

/// The resolved configuration `mqd` runs with.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Broker address.
    pub listen: SocketAddr,
    /// HTTP address, if enabled.
    pub http: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log filter.
    pub log: String,
    /// Bytes buffered per connection.
    pub connection_memory: usize,
    /// Graceful shutdown bound.
    pub shutdown_timeout: Duration,
    /// Where records are kept.
    pub store: StoreConfig,
    /// The broker's configuration.
    pub broker: broker::Config,
    /// Serial lines to serve.
    pub serial: Vec<SerialLine>,
}

/// A serial line `mqd` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialLine {
    /// The terminal device.
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
}

/// The baud rate of a serial line when none is configured.
pub const DEFAULT_BAUD: u32 = 115_200;

/// The store `mqd` runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Nothing on disk: messages live as long as the process.
    Memory,
    /// The write-ahead log in the data directory.
    Wal(WalOptions),
}

fn store(s: &StoreSection) -> Result<StoreConfig, ConfigError> {
    match s.kind.as_deref() {
        None | Some("wal") => {}
        Some("memory") => return Ok(StoreConfig::Memory),
        Some(other) => {
            return Err(err(format!(
                "store kind {other:?}: expected \"wal\" or \"memory\""
            )));
        }
    }
    let defaults = WalOptions::default();
    let fsync = match s.fsync.as_deref() {
        None | Some("always") => FsyncPolicy::Always,
        Some("interval") => FsyncPolicy::Interval(Duration::from_millis(
            s.fsync_interval_ms.unwrap_or(10).max(1),
        )),
        Some("every") => FsyncPolicy::EveryRecords(s.fsync_every.unwrap_or(1000).max(1)),
        Some("never") => FsyncPolicy::Never,
        Some(other) => {
            return Err(err(format!(
                "store fsync {other:?}: expected \"always\", \"interval\", \"every\" or \"never\""
            )));
        }
    };
    let segment_bytes = s.segment_bytes.unwrap_or(defaults.segment_bytes);
    if segment_bytes < 4096 {
        return Err(err("store segment_bytes must be at least 4096"));
    }
    Ok(StoreConfig::Wal(WalOptions {
        fsync,
        segment_bytes,
        max_bytes: s.max_bytes.filter(|&m| m > 0),
        compact_min_bytes: s.compact_min_bytes.unwrap_or(defaults.compact_min_bytes),
    }))
}

fn queue_limits(q: &QueueSection, base: QueueLimits) -> Result<QueueLimits, ConfigError> {
    let overflow = match q.overflow.as_deref() {
        None => base.overflow,
        Some("reject") => Overflow::RejectNew,
        Some("drop-oldest") => Overflow::DropOldest,
        Some("block") => Overflow::Block {
            deadline: Duration::from_millis(q.block_ms.unwrap_or(5_000)),
        },
        Some(other) => {
            return Err(err(format!(
                "queue overflow {other:?}: expected \"reject\", \"drop-oldest\" or \"block\""
            )));
        }
    };
    Ok(QueueLimits {
        max_messages: q.max_messages.unwrap_or(base.max_messages),
        max_bytes: q.max_bytes.unwrap_or(base.max_bytes),
        overflow,
    })
}

fn retention(r: &RetentionSection, base: Retention) -> Retention {
    Retention {
        max_messages: r.max_messages.unwrap_or(base.max_messages),
        max_bytes: r.max_bytes.unwrap_or(base.max_bytes),
        max_age: match r.max_age_ms {
            None => base.max_age,
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
        },
    }
}

fn pattern(p: &Option<String>, what: &str) -> Result<String, ConfigError> {
    let p = p
        .as_deref()
        .ok_or_else(|| err(format!("every [[{what}]] rule needs a pattern")))?;
    Filter::new(p).map_err(|e| err(format!("{what} pattern {p:?}: {e}")))?;
    Ok(p.to_string())
}

fn filters(list: &[String], what: &str) -> Result<(), ConfigError> {
    for f in list {
        Filter::new(f).map_err(|e| err(format!("token {what} filter {f:?}: {e}")))?;
    }
    Ok(())
}

impl FileConfig {
    /// Resolves into what the daemon runs with, checking every value.
    pub fn resolve(&self) -> Result<DaemonConfig, ConfigError> {
        let listen = self.listen.as_deref().unwrap_or(mq_client::DEFAULT_ADDR);
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| err(format!("listen address {listen:?} is not host:port")))?;
        let http = match self.http.as_deref() {
            Some("") => None,
            Some(a) => Some(
                a.parse()
                    .map_err(|_| err(format!("http address {a:?} is not host:port")))?,
            ),
            None => Some(mq_server::DEFAULT_HTTP_ADDR.parse().expect("valid default")),
        };
        let mut b = broker::Config::default();
        let limits = Limits {
            max_frame: self.max_frame.unwrap_or(b.limits.max_frame),
            credit: self.credit.unwrap_or(b.limits.credit),
            keepalive_ms: self.keepalive_ms.unwrap_or(b.limits.keepalive_ms),
        };
        if limits.max_frame < 1024 {
            return Err(err("max_frame must be at least 1024 bytes"));
        }
        b.limits = limits;
        b.max_message = self.max_message.unwrap_or(b.max_message);
        b.max_connections = self.max_connections.unwrap_or(b.max_connections);
        if let Some(ms) = self.ack_timeout_ms {
            b.ack_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        b.max_attempts = self.max_attempts.unwrap_or(b.max_attempts).max(1);
        if let Some(q) = &self.queue {
            b.default_queue = queue_limits(q, b.default_queue)?;
        }
        for q in &self.queues {
            b.queues.push(Rule {
                pattern: pattern(&q.pattern, "queues")?,
                value: queue_limits(q, b.default_queue)?,
            });
        }
        if let Some(r) = &self.retention {
            b.default_retention = retention(r, b.default_retention);
        }
        for r in &self.retention_rules {
            b.retention.push(Rule {
                pattern: pattern(&r.pattern, "retention_rules")?,
                value: retention(r, b.default_retention),
            });
        }
        let mut auth = Auth::default();
        for t in &self.tokens {
            if t.token.is_empty() {
                return Err(err("a token must not be empty"));
            }
            filters(&t.publish, "publish")?;
            filters(&t.subscribe, "subscribe")?;
            auth.tokens.push((
                t.token.clone(),
                Permissions {
                    publish: t.publish.clone(),
                    subscribe: t.subscribe.clone(),
                },
            ));
        }
        b.auth = auth;
        Ok(DaemonConfig {
            listen,
            http,
            data_dir: self
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./mq-data")),
            log: self.log.clone().unwrap_or_else(|| "info".into()),
            connection_memory: self.connection_memory.unwrap_or(4 << 20).max(256 << 10),
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms.unwrap_or(5_000)),
            store: store(&self.store.clone().unwrap_or_default())?,
            broker: b,
            serial: self
                .serial
                .iter()
                .map(|s| match s.baud {
                    Some(0) => Err(err(format!(
                        "serial line {}: baud must be positive",
                        s.path.display()
                    ))),
                    baud => Ok(SerialLine {
                        path: s.path.clone(),
                        baud: baud.unwrap_or(DEFAULT_BAUD),
                    }),
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = FileConfig::default().resolve().unwrap();
        assert_eq!(c.listen.to_string(), mq_client::DEFAULT_ADDR);
        assert_eq!(c.http.unwrap().to_string(), mq_server::DEFAULT_HTTP_ADDR);
        assert_eq!(c.data_dir, PathBuf::from("./mq-data"));
        assert!(c.broker.auth.tokens.is_empty());
        assert_eq!(c.store, StoreConfig::Wal(WalOptions::default()));
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
        let c = parse(
            "[[serial]]\npath = \"/dev/ttyS0\"\nbaud = 9600\n[[serial]]\npath = \"/dev/ttyS1\"",
        );
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
}
