//! The broker's counters in the Prometheus text exposition format, and the tiny
//! HTTP endpoint that serves them (`GET /metrics`) and a health check
//! (`GET /health`), plain or over TLS.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;

use mq_core::broker::{QueueInfo, Stats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::server::ServerControl;
use crate::store::StoreMetrics;
use crate::tls::{ServerTls, Stream, secure};

/// Renders counters, queue depths and the store's counters as Prometheus text.
pub fn render(stats: &Stats, queues: &[QueueInfo], store: &StoreMetrics) -> String {
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

/// Serves `/metrics` and `/health` on `listener` until it fails.
pub async fn serve(listener: TcpListener, control: ServerControl) -> io::Result<()> {
    serve_with(listener, None, control).await
}

/// [`serve`], over TLS when `tls` is given (HTTPS).
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    control: ServerControl,
) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let (control, tls) = (control.clone(), tls.clone());
        tokio::spawn(async move {
            match secure(stream, tls.as_deref()).await {
                Ok(s) => {
                    let _ = answer(s.stream, control).await;
                }
                Err(e) => tracing::debug!(%peer, error = %e, "http connection refused"),
            }
        });
    }
}

async fn answer(mut stream: Stream, control: ServerControl) -> io::Result<()> {
    let mut buf = vec![0u8; 2048];
    let mut len = 0;
    // Read the request head (bounded; we only need the request line).
    while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read(&mut buf[len..]),
        )
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            break;
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/metrics" => {
            let stats = control.stats().await;
            let queues = control.queues().await;
            let store = control.store_metrics().await;
            ("200 OK", render(&stats, &queues, &store))
        }
        "/health" => ("200 OK", "ok\n".to_string()),
        _ => (
            "404 Not Found",
            "not found: try /metrics or /health\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
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
        let text = render(&stats, &queues, &StoreMetrics::default());
        assert!(text.contains("# TYPE mq_messages_in_total counter\nmq_messages_in_total 7\n"));
        assert!(
            text.contains(
                "mq_queue_depth{owner=\"dev\\\"1\",filter=\"a.>\",kind=\"subscription\"} 3"
            )
        );
    }
}
