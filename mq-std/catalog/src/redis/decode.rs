//! Decoding what the Redis scripts answer: nodes, interest rows, offline
//! messages, numbers and strings.

use redis::Value;

use crate::Error;
use crate::model::{self, Interest, Node, Offline, Origin, UnreadableInterest, UnreadableNode};

/// `QOS:NODELEN:NODE[:GROUP]`: the node's length first, so any node id fits.
pub(super) fn encode_interest(interest: &Interest) -> String {
    let mut encoded = format!(
        "{}:{}:{}",
        model::qos_code(interest.qos),
        interest.node.len(),
        interest.node
    );
    if let Some(group) = &interest.group {
        encoded.push(':');
        encoded.push_str(group);
    }
    encoded
}

/// The node of one `id, incarnation, addr, expires` item of
/// [`LIVE_NODES`](super::scripts::LIVE_NODES)' reply (a field the hash
/// lacks is nil), or the row as it could not be decoded.
pub(super) fn decode_node(item: &[Value]) -> Result<Node, UnreadableNode> {
    let decoded = (|| {
        let field = |i: usize, what: &str| match &item[i] {
            Value::Nil => Err(Error::Malformed(format!("its hash has no {what}"))),
            value => Ok(value),
        };
        Ok(Node {
            id: text(&item[0])?,
            incarnation: number(field(1, "incarnation")?)?,
            addr: text(field(2, "addr")?)?,
            lease_expires: model::time_of(number(field(3, "expires")?)?)?,
        })
    })();
    decoded.map_err(|reason| UnreadableNode {
        id: lossy(&item[0]),
        reason,
    })
}

/// A value as text, whatever it holds, to name a row that is unreadable.
fn lossy(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    }
}

/// The interest of one `session, filter, encoded` item of the listing, or
/// the row as it could not be decoded.
pub(super) fn decode_interest(item: &[Value]) -> Result<Interest, UnreadableInterest> {
    let unreadable = |reason| UnreadableInterest {
        session: lossy(&item[0]),
        filter: lossy(&item[1]),
        reason,
    };
    let (session, filter) = (text(&item[0]), text(&item[1]));
    let (Ok(session), Ok(filter)) = (session, filter) else {
        return Err(unreadable(Error::Malformed("not UTF-8".to_owned())));
    };
    let encoded = text(&item[2]).map_err(unreadable)?;
    parse_interest(session, filter, &encoded).map_err(unreadable)
}

/// The offline message of one item of [`READ`](super::scripts::READ)'s reply
/// (`id, topic, payload, meta, origin node, incarnation, seq, enqueued,
/// expires`); all nil but the id when its hash is gone.
pub(super) fn decode_offline(id: u64, m: &[Value]) -> Result<Offline, Error> {
    Ok(Offline {
        id,
        topic: text(&m[1])?,
        payload: bytes(&m[2])?,
        meta: bytes(&m[3])?,
        origin: Origin {
            node: text(&m[4])?,
            incarnation: number(&m[5])?,
            seq: number(&m[6])?,
        },
        enqueued_at: model::time_of(number(&m[7])?)?,
        expires_at: match &m[8] {
            Value::Nil => None,
            at => Some(model::time_of(number(at)?)?),
        },
    })
}

fn parse_interest(session: String, filter: String, encoded: &str) -> Result<Interest, Error> {
    let malformed = || Error::Malformed(format!("interest of {session} in {filter}: `{encoded}`"));
    let (qos, rest) = encoded.split_once(':').ok_or_else(malformed)?;
    let (len, rest) = rest.split_once(':').ok_or_else(malformed)?;
    let len: usize = len.parse().map_err(|_| malformed())?;
    let node = rest.get(..len).ok_or_else(malformed)?.to_owned();
    let group = match &rest[len..] {
        "" => None,
        tail => Some(tail.strip_prefix(':').ok_or_else(malformed)?.to_owned()),
    };
    let qos = model::qos_of(qos.parse().map_err(|_| malformed())?)?;
    Ok(Interest {
        session,
        node,
        filter,
        group,
        qos,
    })
}

/// The reply as groups of `width` values.
pub(super) fn items(
    reply: &Value,
    width: usize,
) -> Result<std::slice::ChunksExact<'_, Value>, Error> {
    match reply {
        Value::Array(values) if values.len() % width == 0 => Ok(values.chunks_exact(width)),
        other => Err(Error::Malformed(format!(
            "expected groups of {width} values, got {other:?}"
        ))),
    }
}

pub(super) fn int(value: &Value) -> Result<i64, Error> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(Error::Malformed(format!(
            "expected a number, got {other:?}"
        ))),
    }
}

pub(super) fn ints(value: &Value) -> Result<Vec<i64>, Error> {
    match value {
        Value::Array(values) => values.iter().map(int).collect(),
        other => Err(Error::Malformed(format!("expected numbers, got {other:?}"))),
    }
}

pub(super) fn bytes(value: &Value) -> Result<Vec<u8>, Error> {
    match value {
        Value::BulkString(bytes) => Ok(bytes.clone()),
        other => Err(Error::Malformed(format!(
            "expected a string, got {other:?}"
        ))),
    }
}

pub(super) fn text(value: &Value) -> Result<String, Error> {
    String::from_utf8(bytes(value)?).map_err(|err| Error::Malformed(format!("not UTF-8: {err}")))
}

/// A decimal number stored as a string.
pub(super) fn number<T: std::str::FromStr>(value: &Value) -> Result<T, Error> {
    let text = text(value)?;
    text.parse()
        .map_err(|_| Error::Malformed(format!("`{text}` is not a number here")))
}
