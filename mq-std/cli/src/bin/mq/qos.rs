//! QoS as people type it: `0` or `1`.

use mq_client::client::QoS;

/// `0` or `1` as a QoS.
pub fn parse_qos(s: &str) -> Result<QoS, String> {
    match s {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        _ => Err("QoS is 0 (at most once) or 1 (at least once)".to_string()),
    }
}

/// The QoS as the number users type.
pub fn qos_number(qos: QoS) -> u8 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
    }
}
