//! Node links: what two nodes of a mesh say to each other beyond the client
//! frames.
//!
//! A link is an ordinary mq connection in which one node is the client of
//! another, and carries one direction of traffic: the node that connects
//! (the *receiver*) asks the node it connects to (the *sender*) for the
//! messages its local sessions want, and stores them before it acknowledges
//! them. A full mesh therefore has one link each way between every two nodes.
//!
//! - **Hello.** The receiver says `Hello` with the client id
//!   `$node.<its node id>` ([`NODE_PREFIX`]) and [`SessionMode::Resume`](super::SessionMode::Resume): the
//!   sender keeps that session while the link is down, and its queue is the
//!   receiver's *outbox* at the sender (bounded by the sender's queue limits,
//!   stored, redelivered after a reconnect or a restart of either node). A
//!   newer link of the same node takes the session over, which fences off the
//!   old one.
//! - **Subscribe.** After `Welcome` the receiver subscribes once (sub id 1,
//!   filter `>`, QoS 1): that subscription is the outbox, and it only ever
//!   receives messages that match the receiver's declared [`Interest`] and
//!   were published at the sender by its own clients (the one-hop rule: a
//!   message that arrived over a link goes only to local subscribers).
//! - **Interest.** Then the receiver declares the union of its local
//!   subscriptions' filters as a snapshot, [`Interest::Begin`], one
//!   [`Interest::Add`] per filter, [`Interest::End`], and from then on each
//!   change as it happens: `Add` when a filter's first local subscription
//!   appears, `Remove` when its last one goes. The sender applies an `Add` at
//!   once and drops what a snapshot did not name only at its `End`, so no
//!   interest is ever missing while a snapshot is under way. The sender
//!   stores the interest with the session.
//! - **Groups.** For each group (filter, name) local sessions are members
//!   of (reference counted like filters), the receiver subscribes with that
//!   filter and group, under an id of its choosing (its [`group_sub`] hash,
//!   or the next free one when another group holds that), and unsubscribes
//!   when its last local member goes; the snapshot repeats these
//!   subscriptions before `End`, and at `End` the sender drops the group
//!   subscriptions of the link session that were not repeated. The
//!   receiver is then one member of the sender's group: a group is served
//!   by the sender's own members when any can take a message now
//!   (connected, active, with credit: local members first),
//!   and otherwise by exactly one of the nodes that joined it.
//! - **Deliver / Ack.** The sender delivers as to any session. The receiver
//!   publishes each message to its own local subscribers: one from the
//!   outbox to its fan-out subscriptions, one for a group to that group's
//!   members; it deduplicates by [`mesh_producer`] (the sender's node and
//!   store epoch, the topic, the group) and the `Deliver`'s `seq`, and
//!   acks only once that publish is stored. On a node link that `seq` is
//!   the message's id at the sender, not its topic sequence: ids grow in
//!   the order messages were accepted and are never handed out again by
//!   that store, while a topic's sequence starts at 1 again after the
//!   topic is deleted (which would have made the receiver drop the new
//!   messages as duplicates).
//! - **Epoch.** A sender whose store starts empty (a memory store at every
//!   start, a data dir that is gone) hands out its ids from 1 again. So a
//!   store has an epoch, a random nonzero number written with its first
//!   record and kept as long as the store (0 for a log written before
//!   epochs), which the sender's `Welcome` to a node link carries: the
//!   receiver files what the link delivers under it, and a sender with a
//!   new store is not taken for its old self, while one that restarted
//!   from its store is deduplicated as before. Messages a receiver drains
//!   from the catalog are filed the same way: their origin there names the
//!   epoch.

use serde::{Deserialize, Serialize};

use super::codec::{Reader, Sink, Wire};

/// Client ids of node links start with this; the rest is the node id. A
/// connection takes such an id only when auth is open or its credentials
/// grant it: a subscribe permission covering `$node.<id>` (`>` does not).
pub const NODE_PREFIX: &str = "$node.";

/// The client id of the local session through which a node publishes what
/// its link to a peer delivers: this, then the peer's node id. No
/// connection may take one.
pub const LINK_PREFIX: &str = "$link.";

/// A receiver's declaration of what its local sessions want (see the module
/// docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Interest<'a> {
    /// A snapshot of the whole interest starts.
    Begin,
    /// Local sessions want messages matching this filter.
    Add(&'a str),
    /// No local session wants this filter any more.
    Remove(&'a str),
    /// The snapshot is complete: what it did not name is withdrawn.
    End,
}

impl<'a> Wire<'a> for Interest<'a> {
    fn write<W: Sink>(&self, w: &mut W) {
        match self {
            Interest::Begin => w.byte(0),
            Interest::Add(filter) => {
                w.byte(1);
                filter.write(w);
            }
            Interest::Remove(filter) => {
                w.byte(2);
                filter.write(w);
            }
            Interest::End => w.byte(3),
        }
    }
    fn read(r: &mut Reader<'a>) -> Self {
        match r.variant(4) {
            0 => Interest::Begin,
            1 => Interest::Add(r.str()),
            2 => Interest::Remove(r.str()),
            _ => Interest::End,
        }
    }
}

/// The deduplication producer a receiver files messages from `node` (whose
/// store has `epoch`) on `topic` under (their sequence is the message id
/// at `node`), for its fan-out subscriptions, or for the local members of
/// `group` (filter, name): FNV-1a of those, each part followed by 0xff, the
/// epoch (8 bytes, little-endian) after the node unless it is 0 (so the
/// producers of logs from before epochs stay what they were).
pub fn mesh_producer(origin: (&str, u64), topic: &str, group: Option<(&str, &str)>) -> u64 {
    mesh_producer_from(mesh_producer_node(origin), topic, group)
}

/// The first part of a [`mesh_producer`], which names the sending node and
/// its epoch: a link, whose peer is the sender of every message it takes,
/// works it out once instead of at each message.
pub(crate) fn mesh_producer_node((node, epoch): (&str, u64)) -> u64 {
    let h = fnv1a(fnv1a(FNV_OFFSET, node.as_bytes()), &[0xff]);
    if epoch == 0 {
        return h;
    }
    fnv1a(fnv1a(h, &epoch.to_le_bytes()), &[0xff])
}

/// A [`mesh_producer`] continued from its node's part
/// ([`mesh_producer_node`]).
pub(crate) fn mesh_producer_from(node: u64, topic: &str, group: Option<(&str, &str)>) -> u64 {
    let (filter, name) = group.unwrap_or(("", ""));
    // Part by part, the same bytes as one iterator over them all: that
    // iterator (a `flat_map` of `chain`s) cost about 230 instructions a
    // message a link forwards.
    [topic, filter, name]
        .iter()
        .fold(node, |h, p| fnv1a(fnv1a(h, p.as_bytes()), &[0xff]))
}

/// The subscription id a receiver first tries to join `group` (filter,
/// name) under at the sender: never the outbox's (1). Hashes collide: the
/// receiver probes past the ids its other groups hold.
pub fn group_sub(filter: &str, name: &str) -> u32 {
    let h = fnv1a(
        fnv1a(fnv1a(FNV_OFFSET, filter.as_bytes()), &[0xff]),
        name.as_bytes(),
    );
    (h as u32) | 0x8000_0000
}

/// The id to join `group` (filter, name) under, where `taken` says which
/// ids are held already: its [`group_sub`] hash, or the next free one past
/// it (never the outbox's).
pub fn free_group_sub(filter: &str, name: &str, taken: impl Fn(u32) -> bool) -> u32 {
    let mut id = group_sub(filter, name);
    while taken(id) {
        id = id.wrapping_add(1) | 0x8000_0000;
    }
    id
}

/// FNV-1a's starting value.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes` continued from `h` (from [`FNV_OFFSET`] for their own).
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hashes are stored (a receiver's dedup state names producers by
    /// them) and compared across nodes: they must never change. Worked out
    /// apart from this code, FNV-1a over the parts each followed by 0xff.
    #[test]
    fn producer_and_group_hashes_are_fixed() {
        assert_eq!(
            mesh_producer(("p", 0), "bench.peer", None),
            0xfab0_b200_7f42_d39f
        );
        let group = Some(("x/+", "workers"));
        assert_eq!(
            mesh_producer(("node-a", 0), "x/y", group),
            0xe249_5c95_8612_5bd6
        );
        assert_eq!(
            mesh_producer(("p", 5), "bench.peer", None),
            0xb016_77ab_9c9c_7449
        );
        assert_eq!(group_sub("x/+", "workers"), 0x8bbf_ab7d);
    }
}
