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
//!   `$node.<its node id>` ([`NODE_PREFIX`]) and [`SessionMode::Resume`]: the
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
//! - **Deliver / Ack.** The sender delivers as to any session. The receiver
//!   publishes each message to its own local subscribers, deduplicated by the
//!   sender's node, topic and the topic's sequence number
//!   ([`mesh_producer`]), and acks only once that publish is stored.
//!
//! Groups are not forwarded yet: a group's messages are served by the members
//! on the node they were published at.

use serde::{Deserialize, Serialize};

/// Client ids of node links start with this; the rest is the node id.
pub const NODE_PREFIX: &str = "$node.";

/// Producer ids with this bit set are the mesh's (see [`mesh_producer`]);
/// clients must not use them.
pub const MESH_PRODUCER_BIT: u64 = 1 << 63;

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

/// The deduplication producer a receiver files messages from `node` on
/// `topic` under (their sequence is the topic sequence at `node`): FNV-1a of
/// both, with [`MESH_PRODUCER_BIT`] set.
pub fn mesh_producer(node: &str, topic: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0xff]).chain(topic.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | MESH_PRODUCER_BIT
}
