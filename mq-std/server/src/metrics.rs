//! The broker's counters in the Prometheus text exposition format (served
//! by [`crate::http`] at `GET /metrics`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mq_core::broker::{MeshStats, QueueInfo, Stats};

use crate::store::StoreMetrics;

/// A kind of catalog call the node task makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogCall {
    /// Renewing the lease.
    Heartbeat,
    /// Registering again after the lease ran out.
    Register,
    /// Reading the live nodes, the interest or this node's offline queue.
    Read,
    /// Writing this node's interest, removing drained messages.
    Write,
    /// Storing messages for away peers in their offline queues.
    HandOn,
    /// Removing the rows of nodes whose lease expired.
    Reap,
}

impl CatalogCall {
    const ALL: [CatalogCall; 6] = [
        CatalogCall::Heartbeat,
        CatalogCall::Register,
        CatalogCall::Read,
        CatalogCall::Write,
        CatalogCall::HandOn,
        CatalogCall::Reap,
    ];

    fn label(self) -> &'static str {
        match self {
            CatalogCall::Heartbeat => "heartbeat",
            CatalogCall::Register => "register",
            CatalogCall::Read => "read",
            CatalogCall::Write => "write",
            CatalogCall::HandOn => "hand_on",
            CatalogCall::Reap => "reap",
        }
    }
}

/// A kind of catalog row the node task could not decode (skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogRow {
    /// A message of this node's offline queue.
    Message,
    /// An interest row.
    Interest,
    /// A live node's row.
    Node,
}

/// What went wrong between the node task and the catalog: its failed calls
/// by kind, its registrations again and whether it was fenced. Shared by the
/// node task (which counts) and `GET /metrics` (which reads), through
/// [`ServerControl::catalog_metrics`](crate::server::ServerControl::catalog_metrics).
#[derive(Debug, Default)]
pub struct CatalogMetrics {
    failed: [AtomicU64; CatalogCall::ALL.len()],
    registered_again: AtomicU64,
    fenced: AtomicBool,
    unreadable: [AtomicU64; 3],
}

impl CatalogMetrics {
    /// A `call` failed.
    pub fn failed(&self, call: CatalogCall) {
        self.failed[call as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The node registered again under a new incarnation.
    pub fn registered_again(&self) {
        self.registered_again.fetch_add(1, Ordering::Relaxed);
    }

    /// The node was fenced off by a newer incarnation (a flag: saying it
    /// again changes nothing).
    pub fn fenced(&self) {
        self.fenced.store(true, Ordering::Relaxed);
    }

    /// Failed calls of kind `call` so far.
    pub fn failures(&self, call: CatalogCall) -> u64 {
        self.failed[call as usize].load(Ordering::Relaxed)
    }

    /// `n` more distinct rows of kind `row` could not be decoded.
    pub fn unreadable(&self, row: CatalogRow, n: u64) {
        self.unreadable[row as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Distinct rows of kind `row` that could not be decoded so far.
    pub fn unreadable_rows(&self, row: CatalogRow) -> u64 {
        self.unreadable[row as usize].load(Ordering::Relaxed)
    }

    /// Registrations again so far.
    pub fn registrations_again(&self) -> u64 {
        self.registered_again.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP mq_mesh_catalog_failures_total Catalog calls of the node task that failed, by call.\n\
             # TYPE mq_mesh_catalog_failures_total counter\n",
        );
        for call in CatalogCall::ALL {
            let _ = writeln!(
                out,
                "mq_mesh_catalog_failures_total{{call=\"{}\"}} {}",
                call.label(),
                self.failures(call)
            );
        }
        let _ = writeln!(
            out,
            "# HELP mq_mesh_catalog_unreadable_total Catalog rows the node task could not decode (skipped, left in the catalog), by kind.\n\
             # TYPE mq_mesh_catalog_unreadable_total counter\n\
             mq_mesh_catalog_unreadable_total{{row=\"message\"}} {}\n\
             mq_mesh_catalog_unreadable_total{{row=\"interest\"}} {}\n\
             mq_mesh_catalog_unreadable_total{{row=\"node\"}} {}",
            self.unreadable_rows(CatalogRow::Message),
            self.unreadable_rows(CatalogRow::Interest),
            self.unreadable_rows(CatalogRow::Node),
        );
        let _ = writeln!(
            out,
            "# HELP mq_mesh_registered_again_total Registrations under a new incarnation after the lease ran out.\n\
             # TYPE mq_mesh_registered_again_total counter\nmq_mesh_registered_again_total {}",
            self.registrations_again()
        );
        let _ = writeln!(
            out,
            "# HELP mq_mesh_fenced Whether a newer incarnation of this node fenced it off (1: it stopped acting for the node).\n\
             # TYPE mq_mesh_fenced gauge\nmq_mesh_fenced {}",
            u8::from(self.fenced.load(Ordering::Relaxed))
        );
    }
}

/// Renders counters, queue depths, the store's and the mesh's counters as
/// Prometheus text.
pub fn render(
    stats: &Stats,
    queues: &[QueueInfo],
    store: &StoreMetrics,
    mesh: &MeshStats,
    catalog: &CatalogMetrics,
) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP mq_{name} {help}\n# TYPE mq_{name} {kind}\nmq_{name} {value}"
        );
    };
    metric(
        "connections",
        "gauge",
        "Open connections.",
        stats.current_connections,
    );
    metric(
        "connections_total",
        "counter",
        "Connections accepted.",
        stats.connections_total,
    );
    metric(
        "mqtt_connections",
        "gauge",
        "Open MQTT connections (also in mq_connections).",
        stats.current_mqtt_connections,
    );
    metric(
        "mqtt_connections_total",
        "counter",
        "MQTT connections accepted (also in mq_connections_total).",
        stats.mqtt_connections_total,
    );
    metric(
        "nats_connections",
        "gauge",
        "Open NATS connections (also in mq_connections).",
        stats.current_nats_connections,
    );
    metric(
        "nats_connections_total",
        "counter",
        "NATS connections accepted (also in mq_connections_total).",
        stats.nats_connections_total,
    );
    metric(
        "retained_slots",
        "gauge",
        "Topics with a retained message (MQTT).",
        stats.current_retained_slots,
    );
    metric(
        "wills_published_total",
        "counter",
        "Will messages published (MQTT).",
        stats.wills_published,
    );
    metric(
        "sessions",
        "gauge",
        "Sessions, connected or persistent and away.",
        stats.current_sessions,
    );
    metric("topics", "gauge", "Topics known.", stats.current_topics);
    metric(
        "topics_forgotten_total",
        "counter",
        "Topics forgotten after keeping nothing for their forget_after.",
        stats.topics_forgotten,
    );
    metric(
        "subscriptions",
        "gauge",
        "Subscriptions.",
        stats.current_subscriptions,
    );
    metric(
        "queued_messages",
        "gauge",
        "Messages waiting in queues.",
        stats.current_queued,
    );
    metric(
        "inflight_deliveries",
        "gauge",
        "Deliveries sent and not yet acked.",
        stats.current_inflight,
    );
    metric(
        "retained_messages",
        "gauge",
        "Messages kept for replay.",
        stats.current_retained,
    );
    metric(
        "messages_in_total",
        "counter",
        "Messages accepted from publishers.",
        stats.messages_in,
    );
    metric(
        "bytes_in_total",
        "counter",
        "Payload bytes accepted.",
        stats.bytes_in,
    );
    metric(
        "messages_out_total",
        "counter",
        "Deliveries sent.",
        stats.messages_out,
    );
    metric(
        "bytes_out_total",
        "counter",
        "Payload bytes delivered.",
        stats.bytes_out,
    );
    metric("acked_total", "counter", "Deliveries acked.", stats.acked);
    metric(
        "nacked_total",
        "counter",
        "Deliveries nacked.",
        stats.nacked,
    );
    metric(
        "redelivered_total",
        "counter",
        "Redeliveries.",
        stats.redelivered,
    );
    metric(
        "ack_timeouts_total",
        "counter",
        "Ack deadlines missed by deliveries that stayed with their subscriber.",
        stats.ack_timeouts,
    );
    metric(
        "expired_total",
        "counter",
        "Messages dropped because their TTL ran out.",
        stats.expired,
    );
    metric(
        "dropped_total",
        "counter",
        "Messages dropped by an overflow policy.",
        stats.dropped,
    );
    metric(
        "rejected_total",
        "counter",
        "Publishes refused.",
        stats.rejected,
    );
    metric(
        "shed_total",
        "counter",
        "Queues shed as a slow consumer's (overflow \"pace\": full for longer than hold_ms).",
        stats.shed,
    );
    metric(
        "dead_lettered_total",
        "counter",
        "Messages moved to a dead-letter topic.",
        stats.dead_lettered,
    );
    metric(
        "duplicates_total",
        "counter",
        "Publishes recognised as duplicates.",
        stats.duplicates,
    );
    metric(
        "protocol_errors_total",
        "counter",
        "Frames refused as malformed or out of place.",
        stats.protocol_errors,
    );
    metric(
        "auth_failures_total",
        "counter",
        "Refused tokens and permissions.",
        stats.auth_failures,
    );
    metric(
        "store_records_total",
        "counter",
        "Store records written.",
        stats.store_ops,
    );
    metric(
        "mesh_links",
        "gauge",
        "Links this node opened to its peers that are up.",
        mesh.links,
    );
    metric(
        "mesh_forwarded_total",
        "counter",
        "Messages put into peers' outboxes (one per peer).",
        mesh.forwarded,
    );
    metric(
        "mesh_received_total",
        "counter",
        "Messages that arrived over links and were new.",
        mesh.received,
    );
    metric(
        "mesh_deduplicated_total",
        "counter",
        "Messages that arrived over links again and were dropped.",
        mesh.deduplicated,
    );
    metric(
        "mesh_away",
        "gauge",
        "Peers whose lease expired: their messages go to the catalog.",
        mesh.away,
    );
    metric(
        "mesh_offline_stored_total",
        "counter",
        "Messages for peers that are away stored in the catalog.",
        mesh.offline_stored,
    );
    metric(
        "mesh_offline_drained_total",
        "counter",
        "Messages from this node's catalog queue published here.",
        mesh.offline_drained,
    );
    metric(
        "mesh_offline_dropped_total",
        "counter",
        "Messages for peers away dropped: their catalog queue was full.",
        mesh.offline_dropped,
    );
    metric(
        "mesh_offline_rejected_total",
        "counter",
        "Messages from this node's catalog queue it will never take, dropped.",
        mesh.offline_rejected,
    );
    metric(
        "mesh_unreachable_total",
        "counter",
        "Live peers whose link stayed down a lease: handed on to the catalog.",
        mesh.unreachable,
    );
    catalog.render(&mut out);
    for (name, value, counter) in store.values() {
        let kind = if counter { "counter" } else { "gauge" };
        let _ = writeln!(
            out,
            "# TYPE mq_store_{name} {kind}\nmq_store_{name} {value}"
        );
    }
    out.push_str("# HELP mq_queue_depth Messages waiting plus in flight, per queue.\n# TYPE mq_queue_depth gauge\n");
    for q in queues {
        let kind = if q.group { "group" } else { "subscription" };
        let _ = writeln!(
            out,
            "mq_queue_depth{{owner=\"{}\",filter=\"{}\",kind=\"{kind}\"}} {}",
            escape(&q.owner),
            escape(&q.filter),
            q.occupancy
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_queues() {
        let stats = Stats {
            messages_in: 7,
            ..Stats::default()
        };
        let queues = [QueueInfo {
            owner: "dev\"1".into(),
            filter: "a.>".into(),
            group: false,
            waiting: 2,
            inflight: 1,
            occupancy: 3,
            max_messages: 10,
        }];
        let mesh = MeshStats {
            links: 2,
            offline_drained: 5,
            offline_dropped: 3,
            ..MeshStats::default()
        };
        let catalog = CatalogMetrics::default();
        catalog.failed(CatalogCall::Heartbeat);
        catalog.failed(CatalogCall::Heartbeat);
        catalog.failed(CatalogCall::HandOn);
        catalog.registered_again();
        catalog.unreadable(CatalogRow::Message, 3);
        catalog.unreadable(CatalogRow::Node, 2);
        let text = render(&stats, &queues, &StoreMetrics::default(), &mesh, &catalog);
        assert!(text.contains("mq_mesh_catalog_failures_total{call=\"heartbeat\"} 2\n"));
        assert!(text.contains("mq_mesh_catalog_failures_total{call=\"hand_on\"} 1\n"));
        assert!(text.contains("mq_mesh_catalog_failures_total{call=\"read\"} 0\n"));
        assert!(text.contains("mq_mesh_catalog_failures_total{call=\"reap\"} 0\n"));
        assert!(text.contains("mq_mesh_catalog_unreadable_total{row=\"message\"} 3\n"));
        assert!(text.contains("mq_mesh_catalog_unreadable_total{row=\"interest\"} 0\n"));
        assert!(text.contains("mq_mesh_catalog_unreadable_total{row=\"node\"} 2\n"));
        assert!(text.contains(
            "# TYPE mq_mesh_registered_again_total counter\nmq_mesh_registered_again_total 1\n"
        ));
        assert!(text.contains("# TYPE mq_mesh_fenced gauge\nmq_mesh_fenced 0\n"));
        assert!(text.contains("# TYPE mq_mesh_links gauge\nmq_mesh_links 2\n"));
        // A flag, however often the node was told.
        catalog.fenced();
        catalog.fenced();
        let text = render(&stats, &queues, &StoreMetrics::default(), &mesh, &catalog);
        assert!(text.contains("# TYPE mq_mesh_fenced gauge\nmq_mesh_fenced 1\n"));
        assert!(text.contains(
            "# TYPE mq_mesh_offline_drained_total counter\nmq_mesh_offline_drained_total 5\n"
        ));
        assert!(text.contains(
            "# TYPE mq_mesh_offline_dropped_total counter\nmq_mesh_offline_dropped_total 3\n"
        ));
        assert!(text.contains("# TYPE mq_messages_in_total counter\nmq_messages_in_total 7\n"));
        assert!(
            text.contains(
                "mq_queue_depth{owner=\"dev\\\"1\",filter=\"a.>\",kind=\"subscription\"} 3"
            )
        );
    }
}
