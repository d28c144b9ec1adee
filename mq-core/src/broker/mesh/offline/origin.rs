//! The origin an offline item is filed under in the catalog: the node it
//! was published at and its store's epoch, and, for a group's job, the
//! group. The catalog keeps
//! one copy per (recipient, origin, id), and the same message may be both
//! in a peer's outbox and in a group only that peer serves: each is a
//! message for the peer, one for its fan-out subscriptions and one for the
//! group's members, so their origins differ.
//!
//! A fan-out item's origin is the node id, then ` #<epoch in hex>` unless
//! the epoch is 0 (as origins were before epochs); a group's is that, then
//! ` <length of the filter> <filter> <name>` (node ids have no spaces).

use alloc::format;
use alloc::string::String;

/// The origin of an item of node `node` (whose store has `epoch`), for
/// `group` (filter, name) if it is a group's job.
pub fn offline_origin((node, epoch): (&str, u64), group: Option<(&str, &str)>) -> String {
    let node = match epoch {
        0 => String::from(node),
        e => format!("{node} #{e:x}"),
    };
    match group {
        None => node,
        Some((filter, name)) => format!("{node} {} {filter} {name}", filter.len()),
    }
}

/// The node (with its epoch) and group of an origin [`offline_origin`]
/// made; `None` when it is not one.
#[allow(clippy::type_complexity)]
pub fn split_offline_origin(origin: &str) -> Option<((&str, u64), Option<(&str, &str)>)> {
    let Some((node, rest)) = origin.split_once(' ') else {
        return (!origin.is_empty()).then_some(((origin, 0), None));
    };
    let (epoch, rest) = match rest.strip_prefix('#') {
        None => (0, rest),
        Some(rest) => {
            let hex = |h| u64::from_str_radix(h, 16).ok().filter(|&e| e != 0);
            let Some((h, rest)) = rest.split_once(' ') else {
                let epoch = hex(rest)?;
                return (!node.is_empty()).then_some(((node, epoch), None));
            };
            (hex(h)?, rest)
        }
    };
    let (len, rest) = rest.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    let filter = rest.get(..len)?;
    let name = rest.get(len..)?.strip_prefix(' ')?;
    let valid = !node.is_empty() && !filter.is_empty() && !name.is_empty();
    valid.then_some(((node, epoch), Some((filter, name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fan_out_item_s_origin_is_its_node_and_epoch() {
        assert_eq!(offline_origin(("n1", 0), None), "n1");
        assert_eq!(split_offline_origin("n1"), Some((("n1", 0), None)));
        assert_eq!(offline_origin(("n1", 0xab), None), "n1 #ab");
        assert_eq!(split_offline_origin("n1 #ab"), Some((("n1", 0xab), None)));
    }

    #[test]
    fn a_group_s_origin_carries_the_group_whatever_its_characters() {
        for epoch in [0, 1, u64::MAX] {
            for (filter, name) in [("a.>", "w"), ("a b.*", "x y"), ("t", " 3 t "), ("#", "#1")] {
                let origin = offline_origin(("n1", epoch), Some((filter, name)));
                assert_eq!(
                    split_offline_origin(&origin),
                    Some((("n1", epoch), Some((filter, name))))
                );
            }
        }
        assert_eq!(offline_origin(("n1", 0), Some(("a.>", "w"))), "n1 3 a.> w");
        assert_eq!(
            offline_origin(("n1", 0x10), Some(("a.>", "w"))),
            "n1 #10 3 a.> w"
        );
    }

    #[test]
    fn what_is_not_an_origin_is_refused() {
        for bad in [
            "",
            "n1 ",
            "n1 x a w",
            "n1 9 a.> w",
            "n1 3 a.>w",
            "n1 3 a.> ",
            " 3 a.> w",
            "n1 #",
            "n1 #0",
            "n1 #x1",
            "n1 #1 ",
            "n1 #1 x a w",
            " #1",
        ] {
            assert_eq!(split_offline_origin(bad), None, "{bad:?}");
        }
    }
}
