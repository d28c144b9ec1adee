//! The origin an offline item is filed under in the catalog: the node it
//! was published at, and, for a group's job, the group. The catalog keeps
//! one copy per (recipient, origin, id), and the same message may be both
//! in a peer's outbox and in a group only that peer serves: each is a
//! message for the peer, one for its fan-out subscriptions and one for the
//! group's members, so their origins differ.
//!
//! A fan-out item's origin is the node id; a group's is `<node> <length of
//! the filter> <filter> <name>` (node ids have no spaces).

use alloc::format;
use alloc::string::String;

/// The origin of an item of node `node`, for `group` (filter, name) if it
/// is a group's job.
pub fn offline_origin(node: &str, group: Option<(&str, &str)>) -> String {
    match group {
        None => String::from(node),
        Some((filter, name)) => format!("{node} {} {filter} {name}", filter.len()),
    }
}

/// The node and group of an origin [`offline_origin`] made; `None` when it
/// is not one.
pub fn split_offline_origin(origin: &str) -> Option<(&str, Option<(&str, &str)>)> {
    let Some((node, rest)) = origin.split_once(' ') else {
        return (!origin.is_empty()).then_some((origin, None));
    };
    let (len, rest) = rest.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    let filter = rest.get(..len)?;
    let name = rest.get(len..)?.strip_prefix(' ')?;
    let valid = !node.is_empty() && !filter.is_empty() && !name.is_empty();
    valid.then_some((node, Some((filter, name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fan_out_item_s_origin_is_its_node() {
        assert_eq!(offline_origin("n1", None), "n1");
        assert_eq!(split_offline_origin("n1"), Some(("n1", None)));
    }

    #[test]
    fn a_group_s_origin_carries_the_group_whatever_its_characters() {
        for (filter, name) in [("a.>", "w"), ("a b.*", "x y"), ("t", " 3 t ")] {
            let origin = offline_origin("n1", Some((filter, name)));
            assert_eq!(
                split_offline_origin(&origin),
                Some(("n1", Some((filter, name))))
            );
        }
        assert_eq!(offline_origin("n1", Some(("a.>", "w"))), "n1 3 a.> w");
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
        ] {
            assert_eq!(split_offline_origin(bad), None, "{bad:?}");
        }
    }
}
