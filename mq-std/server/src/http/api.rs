//! The admin JSON API under `/api/`, over the broker's admin operations
//! (`mq_core::broker::admin`):
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET /api/overview` | the broker's counters (`messages_in`, `connections`, ...) |
//! | `GET /api/topics` | `{"topics": [{name, first_seq, last_seq, retained, retained_bytes, subscribers, messages_in, bytes_in}]}` |
//! | `GET /api/sessions` | `{"sessions": [{client, connected, persistent, inflight, subscriptions: [{id, filter, group, waiting, inflight, dead_lettered}]}]}` |
//! | `GET /api/topics/TOPIC/messages?from=SEQ&limit=N&max_payload=BYTES` (at most 10000 and 65536) | `{"topic", "total", "messages": [{seq, id, published_us, qos, priority, size, payload}]}` |
//! | `POST /api/topics/TOPIC/purge?before=SEQ` (or body `{"before": SEQ}`) | `{"purged": {"retained": N, "queued": N}}` |
//! | `DELETE /api/topics/TOPIC` | `{"deleted": {"retained": N, "queued": N}}` |
//!
//! POST and DELETE need `Authorization: Bearer TOKEN` with a token that has
//! the admin permission (when the broker has tokens at all). Errors are
//! `{"error": "what to do", "reason": "..."}` with a 4xx status.

use mq_client::client::Admin;
use mq_core::Reason;
use mq_core::broker::admin::AdminReply;
use serde_json::{Value, json};

use super::{HttpOptions, Method, Request, Response};

/// Messages listed when the request does not say.
const DEFAULT_LIMIT: u32 = 100;
/// Payload bytes shown per message when the request does not say.
const DEFAULT_PAYLOAD: u32 = 256;
/// The most messages, and payload bytes of each, one answer lists: enough
/// to look at, not enough for one request to make mqd copy a topic whole.
const MAX_LIMIT: u32 = 10_000;
const MAX_PAYLOAD: u32 = 64 * 1024;

/// Answers a request for `/api/` + `rest`.
pub async fn route(request: &Request, rest: &str, opts: &HttpOptions) -> Response {
    match route_inner(request, rest, opts).await {
        Ok(r) | Err(r) => r,
    }
}

async fn route_inner(
    request: &Request,
    rest: &str,
    opts: &HttpOptions,
) -> Result<Response, Response> {
    let control = &opts.control;
    let method = request.method;
    let parts: Vec<&str> = rest.split('/').collect();
    let admin = match (method, parts.as_slice()) {
        (Method::Get, ["overview"]) => return Ok(overview(opts).await),
        (Method::Get, ["topics"]) => Admin::Topics,
        (Method::Get, ["sessions"]) => Admin::Sessions,
        (Method::Get, ["topics", topic, "messages"]) => Admin::Messages {
            topic: topic.to_string(),
            from: number(request, "from")?.unwrap_or(0),
            limit: at_most(number(request, "limit")?, "limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT),
            max_payload: at_most(number(request, "max_payload")?, "max_payload", MAX_PAYLOAD)?
                .unwrap_or(DEFAULT_PAYLOAD),
        },
        (Method::Post, ["topics", topic, "purge"]) => {
            authorize(request, opts)?;
            Admin::Purge {
                topic: topic.to_string(),
                before: before(request)?,
            }
        }
        (Method::Delete, ["topics", topic]) => {
            authorize(request, opts)?;
            Admin::DeleteTopic {
                topic: topic.to_string(),
            }
        }
        (
            _,
            ["overview" | "topics" | "sessions"]
            | ["topics", _, "messages" | "purge"]
            | ["topics", _],
        ) => {
            return Err(Response::error(
                "405 Method Not Allowed",
                "GET /api/topics, /api/sessions, /api/topics/T/messages; POST /api/topics/T/purge; DELETE /api/topics/T",
            ));
        }
        _ => {
            return Err(Response::error(
                "404 Not Found",
                "no such API path: try /api/topics, /api/sessions or /api/overview",
            ));
        }
    };
    Ok(reply(control.admin(admin).await))
}

/// Checks the bearer token of a call that changes the broker.
fn authorize(request: &Request, opts: &HttpOptions) -> Result<(), Response> {
    let auth = opts.auth.get();
    if auth.tokens.is_empty() {
        return Ok(());
    }
    let Some(token) = request.bearer.as_deref() else {
        return Err(Response::error(
            "401 Unauthorized",
            "this call changes the broker: send an admin token as `Authorization: Bearer TOKEN`",
        ));
    };
    match auth.permissions(Some(token)) {
        None => Err(Response::error("401 Unauthorized", "unknown token")),
        Some(p) if !p.admin => Err(Response::error(
            "403 Forbidden",
            "this token may not manage the broker: give it `admin = true` in mqd's config",
        )),
        Some(_) => Ok(()),
    }
}

/// Query parameter `key` as a number, if present.
fn number<T: std::str::FromStr>(request: &Request, key: &str) -> Result<Option<T>, Response> {
    match request.param(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            Response::error(
                "400 Bad Request",
                &format!("`{key}` must be a non-negative number, not {v:?}"),
            )
        }),
    }
}

/// `value`, refused when above `max`.
fn at_most(value: Option<u32>, key: &str, max: u32) -> Result<Option<u32>, Response> {
    match value {
        Some(v) if v > max => Err(Response::error(
            "400 Bad Request",
            &format!("`{key}` may be at most {max}, not {v}"),
        )),
        v => Ok(v),
    }
}

/// A purge's `before`: from the query, or the JSON body `{"before": SEQ}`.
fn before(request: &Request) -> Result<u64, Response> {
    if let Some(b) = number(request, "before")? {
        return Ok(b);
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    body.get("before").and_then(Value::as_u64).ok_or_else(|| {
        Response::error(
            "400 Bad Request",
            "say which messages to purge: ?before=SEQ or a body {\"before\": SEQ}",
        )
    })
}

/// The broker's answer as an HTTP response.
fn reply(answer: AdminReply) -> Response {
    let status = match &answer {
        AdminReply::Refused { reason, .. } => match reason {
            Reason::UnknownId => "404 Not Found",
            Reason::NotAuthorized => "403 Forbidden",
            Reason::ShuttingDown => "503 Service Unavailable",
            _ => "400 Bad Request",
        },
        _ => "200 OK",
    };
    Response::json(status, &to_json(&answer))
}

/// The broker's answer as the API's JSON (`mq topics --json` prints the
/// same): `{"topics": ...}`, `{"sessions": ...}`, `{"topic", "total",
/// "messages"}`, `{"purged": ...}`, `{"deleted": ...}`, or `{"error",
/// "reason"}`.
pub fn to_json(answer: &AdminReply) -> Value {
    match answer {
        AdminReply::Topics { topics, truncated } => {
            json!({ "topics": topics, "truncated": truncated })
        }
        AdminReply::Sessions {
            sessions,
            truncated,
        } => json!({ "sessions": sessions, "truncated": truncated }),
        AdminReply::Messages(list) => {
            let messages: Vec<Value> = list
                .messages
                .iter()
                .map(|m| {
                    json!({
                        "seq": m.seq,
                        "id": m.id,
                        "published_us": m.published_us,
                        "qos": m.qos,
                        "priority": m.priority,
                        "size": m.size,
                        "payload": String::from_utf8_lossy(&m.payload),
                    })
                })
                .collect();
            json!({ "topic": list.topic, "total": list.total, "messages": messages })
        }
        AdminReply::Purged { retained, queued } => {
            json!({ "purged": { "retained": retained, "queued": queued } })
        }
        AdminReply::Deleted { retained, queued } => {
            json!({ "deleted": { "retained": retained, "queued": queued } })
        }
        AdminReply::Refused { reason, text } => {
            json!({ "error": text, "reason": reason.as_str() })
        }
    }
}

/// The broker's counters, for the console's rates.
async fn overview(opts: &HttpOptions) -> Response {
    let s = opts.control.stats().await;
    Response::json(
        "200 OK",
        &json!({
            "connections": s.current_connections,
            "sessions": s.current_sessions,
            "topics": s.current_topics,
            "subscriptions": s.current_subscriptions,
            "queued": s.current_queued,
            "inflight": s.current_inflight,
            "retained": s.current_retained,
            "messages_in": s.messages_in,
            "bytes_in": s.bytes_in,
            "messages_out": s.messages_out,
            "bytes_out": s.bytes_out,
            "acked": s.acked,
            "dead_lettered": s.dead_lettered,
            "dropped": s.dropped,
            "expired": s.expired,
        }),
    )
}
