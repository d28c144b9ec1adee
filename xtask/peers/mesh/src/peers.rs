//! The mq side of the peer-to-peer workloads: a publisher's peer `p` and
//! receivers' peers `r0`, `r1`, ..., each a node in this process with its
//! own write-ahead log (fsync per group commit) in one SQLite catalog; one
//! client per peer. The publisher publishes at QoS 1 with [`WINDOW`]
//! publishes unacknowledged (acknowledged once stored at its peer, which
//! forwards them to the receivers' peers), each receiver subscribes at QoS 1
//! and acks every message. Queues full hold the publisher back
//! ([`Overflow::Block`]) rather than refuse its publishes.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mq_std::client::{Client, PublishOptions, QoS, Receipt, SubscribeOptions};
use mq_std::core::broker::Overflow;
use mq_std::peer::{Peer, PeerOptions};
use mq_std::wal::FsyncPolicy;
use tokio::task::JoinHandle;

use crate::measure::{Measured, Stamp, Tally};
use crate::seen::{self, Extra, Seen};
use crate::workload::{CYCLE_PAUSE, Kind, Workload};

/// QoS 1 publishes outstanding at once, unless `--window` says otherwise.
pub const WINDOW: usize = 1024;
/// Deliveries a subscription may have unacknowledged.
const CREDIT: u32 = 1024;
const TOPIC: &str = "bench.peer";
/// Longest a full queue may hold a publisher.
const HOLD: Duration = Duration::from_secs(30);
/// Longest the links may take to form.
const LINKING: Duration = Duration::from_secs(30);

pub async fn run(
    w: &Workload,
    limit: Duration,
    dir: &Path,
    fsync: FsyncPolicy,
    window: usize,
) -> Result<Measured, String> {
    let (receivers, per_cycle) = match w.kind {
        Kind::Peer(shape) => (shape.receivers(), None),
        Kind::Cycles(per) => (1, Some(per)),
        _ => return Err("not a peer-to-peer workload".to_string()),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mesh = Mesh::start(w, receivers, dir, fsync, window).await?;
    let result = match per_cycle {
        None => mesh.stream(w, limit).await,
        Some(per) => mesh.cycles(w, per, limit).await,
    };
    let _ = std::fs::remove_dir_all(dir);
    result
}

/// The peers, their clients and the receivers' tasks.
struct Mesh {
    peers: Vec<Peer>,
    publisher: Client,
    clients: Vec<Client>,
    receivers: Vec<JoinHandle<()>>,
    tally: Arc<Tally>,
    extra: Arc<Extra>,
    /// QoS 1 publishes outstanding at once.
    window: usize,
}

impl Mesh {
    async fn start(
        w: &Workload,
        n: usize,
        dir: &Path,
        fsync: FsyncPolicy,
        window: usize,
    ) -> Result<Mesh, String> {
        let options = |id: &str| {
            let mut opts = PeerOptions::new(id);
            opts.node.catalog = format!("sqlite:{}", dir.join("mesh.db").display());
            opts.node.lease = Duration::from_secs(3);
            // The default heartbeat (NodeOptions::new), once a second as
            // liner's receivers write their position: each heartbeat is a
            // round of catalog calls per peer, which at 5 a second was
            // most of what the peers did while idle (BENCHMARKS.md, "What
            // the peers cost while idle"). Linking does not wait for it: a
            // node's first heartbeat comes at once.
            opts.node.heartbeat = Duration::from_secs(1);
            opts.data_dir = dir.join(id);
            opts.wal.fsync = fsync;
            // A full queue holds the publisher back instead of refusing its
            // QoS 1 publishes (the default): the sender keeps going at the
            // receivers' pace, as liner's senders do.
            opts.broker.default_queue.overflow = Overflow::Block { deadline: HOLD };
            opts
        };
        let tally = Tally::new();
        let extra = Arc::new(Extra::default());
        let probed = Arc::new(AtomicUsize::new(0));
        let mut peers = Vec::new();
        let mut clients = Vec::new();
        let mut receivers = Vec::new();
        let mut sub_opts = SubscribeOptions::default();
        sub_opts.qos = QoS::AtLeastOnce;
        sub_opts.credit = CREDIT;
        for i in 0..n {
            let id = format!("r{i}");
            let peer = Peer::start(options(&id))
                .await
                .map_err(|e| format!("peer {id}: {e}"))?;
            let client = peer
                .connect(&id)
                .await
                .map_err(|e| format!("client at {id}: {e}"))?;
            let mut sub = client
                .subscribe(TOPIC, &sub_opts)
                .await
                .map_err(|e| format!("subscribe at {id}: {e}"))?;
            let mut seen = Seen::new(tally.recorder(), w.count, Arc::clone(&extra));
            let probed = Arc::clone(&probed);
            receivers.push(tokio::spawn(async move {
                let mut first = true;
                while let Some(m) = sub.next().await {
                    if first && m.payload.len() < 8 {
                        first = false;
                        probed.fetch_add(1, Ordering::Relaxed);
                    }
                    seen.record(&m.payload);
                    if m.needs_ack() {
                        let _ = m.ack();
                    }
                }
            }));
            peers.push(peer);
            clients.push(client);
        }
        let p = Peer::start(options("p"))
            .await
            .map_err(|e| format!("peer p: {e}"))?;
        let publisher = p
            .connect("p")
            .await
            .map_err(|e| format!("client at p: {e}"))?;
        peers.push(p);
        let mesh = Mesh {
            peers,
            publisher,
            clients,
            receivers,
            tally,
            extra,
            window: window.max(1),
        };
        // Linked once a probe reached every receiver.
        let give_up = Instant::now() + LINKING;
        let probe = PublishOptions::new(QoS::AtMostOnce);
        while probed.load(Ordering::Relaxed) < n {
            if Instant::now() > give_up {
                let got = probed.load(Ordering::Relaxed);
                mesh.stop().await;
                return Err(format!(
                    "{got} of {n} receivers' peers linked in {LINKING:?}"
                ));
            }
            let sent = mesh.publisher.publish(TOPIC, "probe", &probe).await;
            if let Err(e) = sent {
                mesh.stop().await;
                return Err(format!("probe: {e}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(mesh)
    }

    /// `w.count` messages as fast as the window allows.
    async fn stream(self, w: &Workload, limit: Duration) -> Result<Measured, String> {
        let mut stamp = self.tally.stamp(w.size);
        let end = Instant::now() + limit;
        self.tally.begin();
        let sent = publish(&self.publisher, self.window, &mut stamp, 0..w.count, end).await;
        let expected = w.expected(*sent.as_ref().unwrap_or(&0));
        if sent.is_ok() {
            self.tally.settle(expected, limit).await;
        }
        let (tally, extra) = (Arc::clone(&self.tally), Arc::clone(&self.extra));
        self.stop().await;
        let sent = sent?;
        let m = tally.measured(expected, w.size);
        let m = match (sent < w.count).then(|| format!("stopped at the time limit after {sent}")) {
            Some(n) => m.with_note(n),
            None => m,
        };
        Ok(seen::noted(m, &extra))
    }

    /// liner's seed: cycles of `per` messages, each timed from its first
    /// publish to its last arrival, [`CYCLE_PAUSE`] apart.
    async fn cycles(self, w: &Workload, per: u64, limit: Duration) -> Result<Measured, String> {
        let mut stamp = self.tally.stamp(w.size);
        let end = Instant::now() + limit;
        let mut times = Vec::new();
        let mut sent = 0;
        let mut failed = None;
        self.tally.begin();
        while sent < w.count && Instant::now() < end {
            if !times.is_empty() {
                tokio::time::sleep(CYCLE_PAUSE).await;
            }
            let start = self.tally.now();
            let upto = (sent + per).min(w.count);
            match publish(&self.publisher, self.window, &mut stamp, sent..upto, end).await {
                Ok(n) => sent += n,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            self.tally.settle(sent, limit).await;
            times.push(self.tally.last().saturating_sub(start));
        }
        let (tally, extra) = (Arc::clone(&self.tally), Arc::clone(&self.extra));
        self.stop().await;
        if let Some(e) = failed {
            return Err(e);
        }
        let m = crate::cycles::measured(tally.measured(sent, w.size), &mut times, per);
        Ok(seen::noted(m, &extra))
    }

    async fn stop(self) {
        for r in &self.receivers {
            r.abort();
        }
        for r in self.receivers {
            let _ = r.await;
        }
        let close = async {
            self.publisher.close().await;
            for c in &self.clients {
                c.close().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
        for p in self.peers {
            let _ = tokio::time::timeout(Duration::from_secs(5), p.stop()).await;
        }
    }
}

/// Publishes the messages numbered `seqs` at QoS 1, `limit` of them
/// unacknowledged; stops at `end`. Returns how many were published, all
/// acknowledged.
async fn publish(
    client: &Client,
    limit: usize,
    stamp: &mut Stamp,
    seqs: std::ops::Range<u64>,
    end: Instant,
) -> Result<u64, String> {
    let opts = PublishOptions::new(QoS::AtLeastOnce);
    let mut window: VecDeque<Receipt> = VecDeque::with_capacity(limit);
    let mut sent = 0;
    for seq in seqs {
        if Instant::now() >= end {
            break;
        }
        if window.len() == limit
            && let Some(oldest) = window.pop_front()
        {
            oldest.await.map_err(|e| format!("publish: {e}"))?;
        }
        let body = bytes::Bytes::copy_from_slice(stamp.next_seq(seq));
        let receipt = client
            .enqueue(TOPIC, body, &opts)
            .await
            .map_err(|e| format!("publish: {e}"))?;
        window.push_back(receipt);
        sent += 1;
    }
    for r in window {
        r.await.map_err(|e| format!("publish: {e}"))?;
    }
    Ok(sent)
}
