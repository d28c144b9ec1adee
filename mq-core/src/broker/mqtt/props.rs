//! Message properties between MQTT and mq: message expiry is the TTL,
//! response topic and correlation data are reply-to and correlation, user
//! properties are headers, and what mq has no field for travels in headers
//! of its own (`mqtt:content-type`, `mqtt:payload-format` = `utf-8`, and
//! `mqtt:qos` = `2` for a QoS 2 publish, which the router stores as QoS 1).
//! Those headers are not user properties on the way out.

use alloc::vec::Vec;

use crate::mqtt::topic::{MQTT_BUF_LEN, TopicMapError, to_mq_topic, to_mqtt_topic};
use crate::mqtt::{PayloadFormat, Properties, QoS, UserProperties};
use crate::topic::Topic;
use crate::wire::{self, Headers, HeadersBuilder, Meta};

/// The header holding MQTT 5's content type.
pub(crate) const CONTENT_TYPE: &str = "mqtt:content-type";
/// The header saying the payload is UTF-8 (MQTT 5's payload format indicator).
pub(crate) const PAYLOAD_FORMAT: &str = "mqtt:payload-format";
/// The header marking a message published at QoS 2.
pub(crate) const QOS: &str = "mqtt:qos";

/// The router's QoS for an MQTT one: QoS 2 is stored as QoS 1.
pub(crate) fn router_qos(qos: QoS) -> wire::QoS {
    match qos {
        QoS::AtMostOnce => wire::QoS::AtMostOnce,
        QoS::AtLeastOnce | QoS::ExactlyOnce => wire::QoS::AtLeastOnce,
    }
}

/// The mq metadata for a publish's (or will's) properties; `reply` holds the
/// mapped response topic, `headers` the encoded headers.
pub(crate) fn meta_in<'a>(
    p: &Properties<'a>,
    qos: QoS,
    reply: &'a mut [u8],
    headers: &'a mut Vec<u8>,
) -> Result<Meta<'a>, TopicMapError> {
    let reply_to = match p.response_topic {
        Some(t) => Some(to_mq_topic(t, reply)?.as_str()),
        None => None,
    };
    let ttl_ms = p
        .message_expiry
        .map(|s| u32::try_from(u64::from(s) * 1000).unwrap_or(u32::MAX));
    Ok(Meta {
        ttl_ms,
        priority: 0,
        reply_to,
        correlation: p.correlation_data,
        headers: headers_in(p, qos, headers),
    })
}

/// User properties, content type, payload format and QoS 2 as headers.
fn headers_in<'a>(p: &Properties<'_>, qos: QoS, buf: &'a mut Vec<u8>) -> Headers<'a> {
    let utf8 = p.payload_format == Some(PayloadFormat::Utf8);
    let fixed: [(&str, Option<&[u8]>); 3] = [
        (CONTENT_TYPE, p.content_type.map(str::as_bytes)),
        (PAYLOAD_FORMAT, utf8.then_some(&b"utf-8"[..])),
        (QOS, (qos == QoS::ExactlyOnce).then_some(&b"2"[..])),
    ];
    let mut need = 0;
    for (k, v) in p.user.iter() {
        need += k.len() + v.len() + 10;
    }
    for (k, v) in fixed {
        need += v.map_or(0, |v| k.len() + v.len() + 10);
    }
    buf.clear();
    buf.resize(need, 0);
    let mut b = HeadersBuilder::new(buf);
    for (k, v) in fixed {
        if let Some(v) = v {
            let _ = b.push(k, v);
        }
    }
    for (k, v) in p.user.iter() {
        // Keys mq refuses (empty, over 255 bytes) are left out.
        let _ = b.push(k, v.as_bytes());
    }
    b.finish()
}

/// What the headers of a stored message say for MQTT.
pub(crate) struct Out<'a> {
    pub content_type: Option<&'a str>,
    pub utf8: bool,
    pub qos2: bool,
    /// The other headers whose values are text: user properties.
    pub user: Vec<(&'a str, &'a str)>,
}

/// Splits a message's headers into MQTT's properties.
pub(crate) fn headers_out(h: Headers<'_>, v5: bool) -> Out<'_> {
    let mut out = Out {
        content_type: None,
        utf8: false,
        qos2: false,
        user: Vec::new(),
    };
    for (k, v) in h.iter() {
        match k {
            CONTENT_TYPE => out.content_type = core::str::from_utf8(v).ok(),
            PAYLOAD_FORMAT => out.utf8 = v == b"utf-8",
            QOS => out.qos2 = v == b"2",
            _ if v5 => {
                if let Ok(v) = core::str::from_utf8(v)
                    && !k.contains('\0')
                    && !v.contains('\0')
                {
                    out.user.push((k, v));
                }
            }
            _ => {}
        }
    }
    out
}

/// A delivery's MQTT 5 properties. `reply_buf` holds the response topic.
pub(crate) fn properties_out<'a>(
    meta: &Meta<'a>,
    out: &'a Out<'a>,
    remaining_secs: Option<u32>,
    reply_buf: &'a mut [u8; MQTT_BUF_LEN],
) -> Properties<'a> {
    let mut p = Properties::EMPTY;
    p.message_expiry = remaining_secs;
    p.response_topic = meta
        .reply_to
        .and_then(|t| Topic::new(t).ok())
        .and_then(|t| to_mqtt_topic(t, reply_buf).ok());
    p.correlation_data = meta.correlation;
    p.content_type = out.content_type;
    p.payload_format = out.utf8.then_some(PayloadFormat::Utf8);
    p.user = UserProperties::new(&out.user);
    p
}
