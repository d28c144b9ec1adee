//! What `mqd` runs with: the file's values checked and filled in with the
//! defaults ([`FileConfig::resolve`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mq_core::broker::{self, Auth, Overflow, Permissions, QueueLimits, Retention, Rule};
use mq_core::topic::Filter;
use mq_core::wire::Limits;
use mq_server::node::NodeOptions;
use mq_server::tls::TlsSettings;
use mq_server::wal::{FsyncPolicy, WalOptions};

use super::error::{ConfigError, err};
use super::file::{
    FileConfig, NodeSection, QueueSection, RetentionSection, StoreSection, TlsSection,
};

/// The resolved configuration `mqd` runs with.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Broker address.
    pub listen: SocketAddr,
    /// HTTP address, if enabled.
    pub http: Option<SocketAddr>,
    /// MQTT address, if enabled.
    pub mqtt: Option<SocketAddr>,
    /// NATS address, if enabled.
    pub nats: Option<SocketAddr>,
    /// The mq protocol over TLS, if enabled.
    pub listen_tls: Option<SocketAddr>,
    /// HTTPS, if enabled.
    pub http_tls: Option<SocketAddr>,
    /// MQTT over TLS, if enabled.
    pub mqtt_tls: Option<SocketAddr>,
    /// The TLS listeners' certificate, key and client CA.
    pub tls: Option<TlsSettings>,
    /// How often to look for changed config and TLS files (`None`: only on
    /// SIGHUP).
    pub reload_watch: Option<Duration>,
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
    /// The mesh this daemon is a node of, if any.
    pub node: Option<NodeOptions>,
}

fn node(s: &NodeSection) -> Result<Option<NodeOptions>, ConfigError> {
    let Some(id) = s.id.clone().filter(|id| !id.is_empty()) else {
        return match s.catalog {
            Some(_) => Err(err("[node] catalog needs a node id (id, --node ID)")),
            None => Ok(None),
        };
    };
    let Some(catalog) = s.catalog.clone() else {
        return Err(err(format!(
            "node {id:?} needs a catalog (catalog = \"sqlite:PATH\", --catalog URL)"
        )));
    };
    let mut opts = NodeOptions::new(id, catalog);
    opts.advertise = s.advertise.clone().filter(|a| !a.is_empty());
    opts.token = s.token.clone();
    opts.namespace = s.namespace.clone();
    if let Some(ms) = s.lease_ms {
        opts.lease = Duration::from_millis(ms);
    }
    opts.heartbeat = match s.heartbeat_ms {
        Some(ms) => Duration::from_millis(ms),
        None => opts.lease / 5,
    };
    if opts.heartbeat.is_zero() || opts.heartbeat >= opts.lease {
        return Err(err(format!(
            "[node] heartbeat_ms ({:?}) must be positive and shorter than lease_ms ({:?})",
            opts.heartbeat, opts.lease
        )));
    }
    opts.call_timeout = s.call_timeout_ms.map(Duration::from_millis);
    let call_timeout = opts.call_timeout_or_default();
    if call_timeout.is_zero() || call_timeout >= opts.lease {
        return Err(err(format!(
            "[node] call_timeout_ms ({call_timeout:?}) must be positive and shorter than lease_ms ({:?})",
            opts.lease
        )));
    }
    Ok(Some(opts))
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

/// How long a full queue holds a publisher before it is shed, by default.
const PACE_HOLD_MS: u64 = 1_000;

/// How long a topic that keeps nothing waits without a message before it is
/// forgotten, by default.
const FORGET_AFTER_MS: u64 = 60_000;

/// How long a NATS reply subject (`_INBOX.>`, one per request) waits after
/// its reply before it is forgotten, unless a rule of the file matches it.
const INBOX_FORGET_AFTER_MS: u64 = 1_000;

fn queue_limits(q: &QueueSection, base: QueueLimits) -> Result<QueueLimits, ConfigError> {
    let overflow = match q.overflow.as_deref() {
        None => base.overflow,
        Some("reject") => Overflow::RejectNew,
        Some("drop-oldest") => Overflow::DropOldest,
        Some("block") => Overflow::Block {
            deadline: Duration::from_millis(q.block_ms.unwrap_or(5_000)),
        },
        Some("pace") => Overflow::Pace {
            hold: Duration::from_millis(q.hold_ms.unwrap_or(PACE_HOLD_MS)),
        },
        Some(other) => {
            return Err(err(format!(
                "queue overflow {other:?}: expected \"pace\", \"reject\", \"drop-oldest\" or \"block\""
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
        forget_after: match r.forget_after_ms {
            None => base.forget_after,
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

/// Checks permission filters; `{client_id}` and `{identity}` stand for one
/// token each.
fn filters(list: &[String], what: &str) -> Result<(), ConfigError> {
    for f in list {
        let example = f.replace("{client_id}", "x").replace("{identity}", "x");
        Filter::new(&example).map_err(|e| err(format!("{what} filter {f:?}: {e}")))?;
    }
    Ok(())
}

/// An optional address: absent or empty is off.
fn optional_addr(a: Option<&str>, what: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match a {
        None | Some("") => Ok(None),
        Some(a) => a
            .parse()
            .map(Some)
            .map_err(|_| err(format!("{what} address {a:?} is not host:port"))),
    }
}

fn tls(t: &TlsSection) -> Result<TlsSettings, ConfigError> {
    let (Some(cert), Some(key)) = (&t.cert, &t.key) else {
        return Err(err(
            "[tls] needs both cert and key (--tls-cert FILE --tls-key FILE)",
        ));
    };
    if t.require_client_cert == Some(true) && t.client_ca.is_none() {
        return Err(err(
            "[tls] require_client_cert needs client_ca, the CA client certificates chain to",
        ));
    }
    Ok(TlsSettings {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: t.client_ca.clone(),
        require_client_cert: t.client_ca.is_some() && t.require_client_cert.unwrap_or(true),
    })
}

impl FileConfig {
    /// The tokens and identities with their permissions, checked: what a
    /// reload replaces.
    pub fn auth(&self) -> Result<Auth, ConfigError> {
        let mut auth = Auth::default();
        for t in &self.tokens {
            if t.token.is_empty() {
                return Err(err("a token must not be empty"));
            }
            filters(&t.publish, "token publish")?;
            filters(&t.subscribe, "token subscribe")?;
            auth.tokens.push((
                t.token.clone(),
                Permissions {
                    publish: t.publish.clone(),
                    subscribe: t.subscribe.clone(),
                    admin: t.admin,
                },
            ));
        }
        for i in &self.identities {
            if i.identity.is_empty() {
                return Err(err("an identity must not be empty"));
            }
            filters(&i.publish, "identity publish")?;
            filters(&i.subscribe, "identity subscribe")?;
            auth.identities.push((
                i.identity.clone(),
                Permissions {
                    publish: i.publish.clone(),
                    subscribe: i.subscribe.clone(),
                    admin: false,
                },
            ));
        }
        Ok(auth)
    }
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
        let mqtt = optional_addr(self.mqtt.as_ref().and_then(|m| m.listen.as_deref()), "mqtt")?;
        let listen_tls = optional_addr(self.listen_tls.as_deref(), "listen_tls")?;
        let http_tls = optional_addr(self.http_tls.as_deref(), "http_tls")?;
        let mqtt_tls = optional_addr(
            self.mqtt.as_ref().and_then(|m| m.listen_tls.as_deref()),
            "mqtt listen_tls",
        )?;
        let tls = self.tls.as_ref().map(tls).transpose()?;
        if tls.is_none() && (listen_tls.is_some() || http_tls.is_some() || mqtt_tls.is_some()) {
            return Err(err(
                "a TLS listener needs [tls] cert and key (--tls-cert FILE --tls-key FILE)",
            ));
        }
        let nats = optional_addr(self.nats.as_ref().and_then(|n| n.listen.as_deref()), "nats")?;
        let mut b = broker::Config::default();
        // mqd's default: a fast publisher is paced to its consumers (nothing
        // dropped while they keep up); one that stops is shed after a second.
        b.default_queue.overflow = Overflow::Pace {
            hold: Duration::from_millis(PACE_HOLD_MS),
        };
        // mqd's default: a topic that keeps nothing for replay is forgotten
        // after a minute without messages (memory holds the recent topics,
        // not every name seen).
        b.default_retention.forget_after = Some(Duration::from_millis(FORGET_AFTER_MS));
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
        // After the file's rules, which may say otherwise: reply topics keep
        // nothing for replay. A NATS client's `_INBOX.` subjects (one per
        // request) are forgotten a second after their reply; an mq client's
        // `_reply.<client id>` (one per client) as any other topic: made
        // again after each forgetting, its QoS 1 replies would cost a synced
        // reservation each.
        for (p, forget_after) in [
            (
                "_INBOX.>",
                Some(Duration::from_millis(INBOX_FORGET_AFTER_MS)),
            ),
            ("_reply.>", b.default_retention.forget_after),
        ] {
            b.retention.push(Rule {
                pattern: p.to_string(),
                value: Retention {
                    max_messages: 0,
                    forget_after,
                    ..b.default_retention
                },
            });
        }
        b.auth = self.auth()?;
        Ok(DaemonConfig {
            listen,
            http,
            mqtt,
            nats,
            listen_tls,
            http_tls,
            mqtt_tls,
            tls,
            reload_watch: self
                .reload_watch_ms
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
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
            node: node(&self.node.clone().unwrap_or_default())?,
        })
    }
}
