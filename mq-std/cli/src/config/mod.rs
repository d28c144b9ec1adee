//! `mqd`'s configuration: an optional TOML file, overridden by `MQ_*` environment
//! variables, overridden by command-line flags. With nothing at all, the embedded
//! defaults run a broker on `127.0.0.1:7410` with its data under `./mq-data`.
//!
//! [`FileConfig`] is the file as written (`file.rs`), with the environment laid
//! over it; [`FileConfig::resolve`] checks it and fills in the defaults into the
//! [`DaemonConfig`] `mqd` runs with (`resolve.rs`).
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
//! overflow = "pace"              # "pace" | "reject" | "drop-oldest" | "block"
//! hold_ms = 1000                 # how long a full "pace" queue holds a publisher before it is shed
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
//! forget_after_ms = 60000        # a topic keeping nothing (max_messages = 0, aged
//!                                #   out, purged) is forgotten after this long
//!                                #   without a message (0: never); its numbers
//!                                #   are not given again. Reply topics (`_INBOX.>`,
//!                                #   `_reply.>`) keep nothing, and NATS's `_INBOX.`
//!                                #   subjects are forgotten after 1 s, unless a
//!                                #   rule below matches them
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
//!                                #   the others acknowledge before the fsync: a crash
//!                                #   of mqd loses nothing, a power cut what was not
//!                                #   synced yet (README, Storage)
//! fsync_interval_ms = 10         # "interval": written records wait at most this
//!                                #   long for an fsync
//! fsync_every = 1000             # "every": at most this many records between fsyncs
//! segment_bytes = 16777216       # a segment file is closed at this size
//! max_bytes = 0                  # MQ_STORE_MAX_BYTES: at this disk use, QoS 1
//!                                #   publishes are refused (StorageFull); 0: no limit
//! compact_min_bytes = 67108864   # no compaction below this disk use
//!
//! [mqtt]                         # MQTT 3.1.1 and 5 into the same broker; off
//! listen = "127.0.0.1:1883"      #   unless set (MQ_MQTT, `--mqtt ADDR`)
//! listen_tls = "0.0.0.0:8883"    # MQTT over TLS (MQ_MQTT_TLS, `--mqtt-tls ADDR`)
//!
//! # TLS: each listener plain, TLS or both, on addresses of their own.
//! # listen_tls = "0.0.0.0:7443"  # (top level) MQ_LISTEN_TLS, `--listen-tls ADDR`
//! # http_tls = "0.0.0.0:7444"    # (top level) MQ_HTTP_TLS, `--http-tls ADDR`
//! # reload_watch_ms = 0          # (top level) MQ_RELOAD_WATCH_MS: > 0 checks the
//! #                              #   config and TLS files this often and reloads
//! #                              #   when one changed (Windows has no SIGHUP)
//! [tls]                          # the TLS listeners' certificate; re-read on SIGHUP
//! cert = "server.pem"            # MQ_TLS_CERT, `--tls-cert FILE` (chain, leaf first)
//! key = "server.key"             # MQ_TLS_KEY, `--tls-key FILE`
//! client_ca = "clients-ca.pem"   # MQ_TLS_CLIENT_CA, `--tls-client-ca FILE`: mutual
//!                                #   TLS, client certificates must chain to it
//! require_client_cert = true     # with client_ca (default true); false lets clients
//!                                #   without a certificate in (with a token)
//!
//! [[identities]]                 # a client certificate's identity (its subject CN,
//! identity = "sensor-17"         #   else its first DNS/e-mail/URI SAN) and what it
//! publish = ["dev.{identity}.>"] #   may do, as a token; patterns (tokens' too) may
//! subscribe = ["dev.{client_id}.cmd"] # name {identity} and {client_id}
//!
//! # SIGHUP (or a change seen by reload_watch_ms) re-reads the file and the TLS
//! # files: new certificates, key and client CA apply to new connections, new
//! # tokens and identities to every connection; those whose credentials were
//! # revoked are closed with the reason. Other settings need a restart.
//!
//! [nats]                         # the NATS client protocol into the same
//! listen = "127.0.0.1:4222"      #   broker; off unless set (MQ_NATS,
//!                                #   `--nats ADDR`)
//!
//! [node]                         # a node of a mesh (off unless id is set):
//! id = "east-1"                  #   MQ_NODE, `--node ID`: unique in the catalog
//! catalog = "sqlite:/var/lib/mq/mesh.db" # MQ_CATALOG, `--catalog URL`; also
//!                                #   redis://HOST:PORT/DB, postgres://USER@HOST:PORT/DB
//! namespace = "mq"               # the catalog's tables' or keys' prefix (meshes
//!                                #   sharing one database keep apart by it)
//! advertise = "10.0.0.5:7410"    # MQ_ADVERTISE, `--advertise ADDR`: where the other
//!                                #   nodes connect (default: the listen address)
//! lease_ms = 5000                # the catalog lists the node this long after a heartbeat
//! heartbeat_ms = 1000            # (default lease_ms / 5)
//! call_timeout_ms = 2500         # one catalog call fails after this (below lease_ms;
//!                                #   default lease_ms / 2, at most lease_ms - heartbeat_ms)
//! token = "mesh-secret"          # MQ_NODE_TOKEN: what its links present to the others,
//!                                #   whose tokens must let `$node.<id>` subscribe to ">"
//!
//! [serial]                       # a device on a serial line (mq_std::serial);
//! path = "/dev/ttyUSB0"          #   [[serial]] for several; `--serial PATH` adds
//! baud = 115200                  #   one more (at 115200 baud). Unix only.
//! ```

mod error;
mod file;
mod resolve;
#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use file::{
    FileConfig, IdentitySection, MqttSection, NatsSection, NodeSection, QueueSection,
    RetentionSection, SerialSection, StoreSection, TlsSection, TokenSection,
};
pub use resolve::{DEFAULT_BAUD, DaemonConfig, SerialLine, StoreConfig};
