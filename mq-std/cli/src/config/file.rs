//! The configuration as written: the TOML file's sections, every field
//! optional, and the `MQ_*` environment variables laid over them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::error::{ConfigError, err};

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
    /// `pace` (mqd's default), `reject`, `drop-oldest` or `block`.
    pub overflow: Option<String>,
    /// How long `block` holds a publisher, in milliseconds.
    pub block_ms: Option<u64>,
    /// How long a full `pace` queue holds a publisher before it is shed as a
    /// slow consumer's, in milliseconds.
    pub hold_ms: Option<u64>,
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
    /// A topic that keeps nothing for replay is forgotten after this many
    /// milliseconds without a message; 0: never.
    pub forget_after_ms: Option<u64>,
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
    /// May manage topics and sessions (list, purge, delete: `mq topics`,
    /// the HTTP API's writes, the web console's buttons).
    #[serde(default)]
    pub admin: bool,
}

/// What the identity of a verified client certificate may do (mutual TLS).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// The certificate's subject CN (or, without one, its first DNS, e-mail
    /// or URI subject alternative name).
    pub identity: String,
    /// Topic filters it may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Filters it may subscribe within.
    #[serde(default)]
    pub subscribe: Vec<String>,
}

/// `[tls]`: the certificate of the TLS listeners, and client certificates.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The server's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// CA certificate(s) that client certificates must chain to (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients without a certificate (default true).
    pub require_client_cert: Option<bool>,
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
    /// Broker address over TLS (needs `[tls]`); empty disables it.
    pub listen_tls: Option<String>,
    /// HTTP address for `/metrics` and `/health`; empty disables it.
    pub http: Option<String>,
    /// HTTPS address for the same (needs `[tls]`); empty disables it.
    pub http_tls: Option<String>,
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
    /// Identities of client certificates and their permissions.
    #[serde(default)]
    pub identities: Vec<IdentitySection>,
    /// The TLS listeners' certificate and client CA.
    pub tls: Option<TlsSection>,
    /// Every this many milliseconds, check whether the config file or the
    /// TLS files changed and reload them if so; 0 (the default): only on
    /// SIGHUP. The way to reload on Windows, which has no SIGHUP.
    pub reload_watch_ms: Option<u64>,
    /// Where records are kept.
    pub store: Option<StoreSection>,
    /// Serial lines to serve.
    #[serde(default, deserialize_with = "one_or_many")]
    pub serial: Vec<SerialSection>,
    /// The MQTT listener (off unless configured).
    pub mqtt: Option<MqttSection>,
    /// The NATS listener (off unless configured).
    pub nats: Option<NatsSection>,
    /// This daemon as a node of a mesh (off unless configured).
    pub node: Option<NodeSection>,
}

/// `[node]`: link this daemon with the other nodes of a mesh, found in a
/// catalog.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The node id, unique in the catalog.
    pub id: Option<String>,
    /// `sqlite:PATH`, `redis://HOST:PORT/DB` or `postgres://USER@HOST:PORT/DB`.
    pub catalog: Option<String>,
    /// The catalog's namespace, for meshes that share one database.
    pub namespace: Option<String>,
    /// The address the other nodes connect to; the listen address if unset.
    pub advertise: Option<String>,
    /// How long the catalog lists the node after a heartbeat, in milliseconds.
    pub lease_ms: Option<u64>,
    /// How often the lease is renewed, in milliseconds (below `lease_ms`).
    pub heartbeat_ms: Option<u64>,
    /// How long one catalog call may take, in milliseconds (below
    /// `lease_ms`; default `heartbeat_ms`, at most half `lease_ms`).
    pub call_timeout_ms: Option<u64>,
    /// What this node's links present to the other nodes.
    pub token: Option<String>,
}

/// `[mqtt]`: serve MQTT 3.1.1 and 5 into the same broker.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Address to listen on (1883 by convention); empty turns it off.
    pub listen: Option<String>,
    /// Address to serve MQTT over TLS on (8883 by convention; needs `[tls]`).
    pub listen_tls: Option<String>,
}

/// `[nats]`: serve the NATS client protocol into the same broker.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NatsSection {
    /// Address to listen on (4222 by convention); empty turns it off.
    pub listen: Option<String>,
}

impl FileConfig {
    /// The `[node]` section, added empty if the file has none.
    pub fn node_mut(&mut self) -> &mut NodeSection {
        self.node.get_or_insert_with(NodeSection::default)
    }

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
        if let Some(v) = env("MQ_MQTT") {
            self.mqtt.get_or_insert_with(Default::default).listen = Some(v);
        }
        if let Some(v) = env("MQ_NATS") {
            self.nats.get_or_insert_with(Default::default).listen = Some(v);
        }
        if let Some(v) = env("MQ_LISTEN_TLS") {
            self.listen_tls = Some(v);
        }
        if let Some(v) = env("MQ_HTTP_TLS") {
            self.http_tls = Some(v);
        }
        if let Some(v) = env("MQ_MQTT_TLS") {
            self.mqtt.get_or_insert_with(Default::default).listen_tls = Some(v);
        }
        if let Some(v) = env("MQ_TLS_CERT") {
            self.tls.get_or_insert_with(Default::default).cert = Some(v.into());
        }
        if let Some(v) = env("MQ_TLS_KEY") {
            self.tls.get_or_insert_with(Default::default).key = Some(v.into());
        }
        if let Some(v) = env("MQ_TLS_CLIENT_CA") {
            self.tls.get_or_insert_with(Default::default).client_ca = Some(v.into());
        }
        if let Some(v) = env("MQ_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = env("MQ_LOG") {
            self.log = Some(v);
        }
        if let Some(v) = env("MQ_NODE") {
            self.node_mut().id = Some(v);
        }
        if let Some(v) = env("MQ_CATALOG") {
            self.node_mut().catalog = Some(v);
        }
        if let Some(v) = env("MQ_ADVERTISE") {
            self.node_mut().advertise = Some(v);
        }
        if let Some(v) = env("MQ_NODE_TOKEN") {
            self.node_mut().token = Some(v);
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
            "MQ_RELOAD_WATCH_MS" => reload_watch_ms,
        );
        Ok(())
    }
}
