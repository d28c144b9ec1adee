//! The clients when the network and the application do not keep up: the
//! connection dropped and refused, slow and full subscribers, a full outbox,
//! messages larger than a frame. Against an in-process server, over real TCP
//! (and once over in-memory pipes a connector opens); every test is bounded
//! in time.

mod support;

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use mq_core::broker::Config as BrokerConfig;
use mq_std::blocking;
use mq_std::client::{Client, Connector, Error, Message, State, SubscribeOptions, Subscription};
use mq_std::core::framing::Framing;
use mq_std::server::ServerControl;
use support::*;
use tokio::io::{BufWriter, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy that can drop every connection and refuse new ones for a while.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<u64>,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(0u64);
        let up = Arc::new(AtomicBool::new(true));
        let cuts = cut.clone();
        let accepting = Arc::clone(&up);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, cut, up }
    }

    /// Drops every connection and refuses new ones until [`restore`].
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// In-memory pipes attached to a server, each through a copy that a `cut`
/// ends; counts the connections it opened.
struct Pipes {
    server: ServerControl,
    opened: Arc<AtomicUsize>,
    cut: watch::Sender<u64>,
}

impl Connector for Pipes {
    type Stream = DuplexStream;

    async fn connect(&self) -> io::Result<DuplexStream> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let (client, mut near) = tokio::io::duplex(64 * 1024);
        let (mut far, server) = tokio::io::duplex(64 * 1024);
        if !self.server.attach(server, Framing::Stream, "pipe".into()) {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        let mut cut = self.cut.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut near, &mut far) => {}
                _ = cut.changed() => {}
            }
        });
        Ok(client)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_through_its_connector() {
    let srv = default_server().await;
    within(async {
        let (cut, _) = watch::channel(0u64);
        let opened = Arc::new(AtomicUsize::new(0));
        let pipes = Pipes {
            server: srv.control(),
            opened: Arc::clone(&opened),
            cut: cut.clone(),
        };
        let mut opts = options(srv.local_addr());
        opts.reconnect_min = Duration::from_millis(20);
        opts.reconnect_max = Duration::from_millis(100);
        let client = Client::connect_with(opts, pipes).await.unwrap();
        let mut sub = client
            .subscribe("t", &SubscribeOptions::default())
            .await
            .unwrap();
        through(&client, &mut sub, "1").await.ack().unwrap();

        cut.send_modify(|n| *n += 1);
        while client.stats().state == State::Connected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Acknowledged over the connection the connector opened next; the
        // session resubscribed there on its own.
        through(&client, &mut sub, "2").await.ack().unwrap();
        assert!(opened.load(Ordering::SeqCst) >= 2);
        assert!(client.stats().session.reconnects >= 1);
        assert_eq!(srv.control().accepted(), 0, "a connection came over TCP");
        client.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

/// Publishes `payload` on `t` (QoS 1, acknowledged) and receives it on
/// `sub`.
async fn through(client: &Client, sub: &mut Subscription, payload: &str) -> Message {
    client
        .publish("t", payload.to_owned(), &qos1())
        .await
        .unwrap();
    let m = sub.next().await.unwrap();
    assert_eq!(&m.payload[..], payload.as_bytes());
    m
}

/// In-memory pipes attached to a server behind a writer that keeps what it
/// is given until it is flushed (8 KiB, more than a session's first frames).
struct Buffered(ServerControl);

impl Connector for Buffered {
    type Stream = BufWriter<DuplexStream>;

    async fn connect(&self) -> io::Result<BufWriter<DuplexStream>> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        if !self.0.attach(server, Framing::Stream, "buffered".into()) {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        Ok(BufWriter::new(client))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_s_buffering_stream_is_flushed() {
    let srv = default_server().await;
    within(async {
        let opts = options(srv.local_addr());
        let client = Client::connect_with(opts, Buffered(srv.control()))
            .await
            .unwrap();
        let mut sub = client
            .subscribe("t", &SubscribeOptions::default())
            .await
            .unwrap();
        through(&client, &mut sub, "1").await;
        client.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_connection_drops() {
    let srv = default_server().await;
    within(async {
        let proxy = Proxy::start(srv.local_addr()).await;
        let mut opts = options(proxy.addr);
        opts.reconnect_min = Duration::from_millis(20);
        opts.reconnect_max = Duration::from_millis(100);
        let client = Client::connect(opts).await.unwrap();
        let observer = Client::connect(options(srv.local_addr())).await.unwrap();
        let mut seen = observer
            .subscribe("events", &SubscribeOptions::default())
            .await
            .unwrap();
        let mut mine = client
            .subscribe("commands", &SubscribeOptions::default())
            .await
            .unwrap();

        client.publish("events", "1", &qos1()).await.unwrap();
        proxy.cut();
        while client.stats().state == State::Connected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Queued while the connection is down; sent after the session reconnects.
        let pending = {
            let client = client.clone();
            tokio::spawn(async move { client.publish("events", "2", &qos1()).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!pending.is_finished(), "acknowledged while disconnected");
        assert_ne!(client.stats().state, State::Connected);
        proxy.restore();
        let ack = pending.await.unwrap().unwrap();
        assert!(ack.seq.is_some());
        assert!(client.stats().session.reconnects >= 1);
        let mut got = Vec::new();
        while got.len() < 2 {
            let m = seen.next().await.unwrap();
            got.push(String::from_utf8(m.payload.to_vec()).unwrap());
            m.ack().unwrap();
        }
        assert_eq!(got, ["1", "2"]);

        // The clean session resubscribed on its own.
        let mut delivered = false;
        for _ in 0..100 {
            observer.publish("commands", "go", &qos1()).await.unwrap();
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(50), mine.next()).await
            {
                assert_eq!(&m.payload[..], b"go");
                m.ack().unwrap();
                delivered = true;
                break;
            }
        }
        assert!(delivered, "the subscription did not survive the reconnect");
        assert_eq!(client.stats().state, State::Connected);
        client.close().await;
        observer.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_gets_every_qos1_message_in_order() {
    let srv = default_server().await;
    within(async {
        let addr = srv.local_addr();
        let publisher = Client::connect(options(addr)).await.unwrap();
        let mut opts = options(addr);
        opts.credit = 16;
        let subscriber = Client::connect(opts).await.unwrap();
        let mut sub = subscriber
            .subscribe("stream", &SubscribeOptions::default())
            .await
            .unwrap();
        const N: u64 = 1000;
        let publish = {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                for i in 0..N {
                    publisher
                        .publish("stream", i.to_string(), &qos1())
                        .await
                        .unwrap();
                }
            })
        };
        let mut max_inbox = 0;
        for i in 0..N {
            let m = sub.next().await.unwrap();
            assert_eq!(m.payload, Bytes::from(i.to_string()), "out of order");
            if i % 50 == 0 {
                // Read slowly now and then: the publisher runs ahead.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            max_inbox = max_inbox.max(subscriber.stats().inbox_bytes);
            m.ack().unwrap();
        }
        publish.await.unwrap();
        assert!(max_inbox <= 2 << 20);
        publisher.close().await;
        subscriber.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sink_stops_reading_without_losing_qos0_messages() {
    let srv = default_server().await;
    let addr = srv.local_addr();
    within(async move {
        // QoS 0 credit comes back as the driver takes messages from the session,
        // so a slow reader fills its sink and the driver must hold the rest back.
        let mut opts = options(addr);
        opts.credit = 8;
        opts.inbox_bytes = 16 * 1024;
        let subscriber = blocking_task(move || blocking::Client::connect(opts))
            .await
            .unwrap();
        let s = subscriber.clone();
        let sub = blocking_task(move || s.subscribe("ticks", &SubscribeOptions::default()))
            .await
            .unwrap();
        let publisher = Client::connect(options(addr)).await.unwrap();
        const N: u64 = 500;
        for i in 0..N {
            publisher
                .publish("ticks", i.to_string(), &qos0())
                .await
                .unwrap();
        }
        let stats_of = subscriber.clone();
        let got = blocking_task(move || {
            let mut got = Vec::new();
            let mut peak_held = 0;
            for i in 0..N {
                let m = sub.recv_timeout(Duration::from_secs(10)).expect("a tick");
                got.push(String::from_utf8(m.payload.to_vec()).unwrap());
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
                peak_held = peak_held.max(stats_of.stats().inbox_bytes);
            }
            assert!(peak_held <= 16 * 1024);
            got
        })
        .await;
        let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        publisher.close().await;
        blocking_task(move || subscriber.close()).await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_wait_for_outbox_room() {
    let srv = default_server().await;
    within(async {
        let addr = srv.local_addr();
        let mut opts = options(addr);
        opts.outbox_bytes = 4 * 1024;
        let client = Client::connect(opts).await.unwrap();
        let observer = Client::connect(options(addr)).await.unwrap();
        let mut sub = observer
            .subscribe("bulk.>", &SubscribeOptions::default())
            .await
            .unwrap();
        // 64 concurrent 1 KiB publishes into a 4 KiB outbox.
        let acks = futures_join_all((0..64u32).map(|i| {
            let client = client.clone();
            async move {
                client
                    .publish(&format!("bulk.{i}"), vec![i as u8; 1024], &qos1())
                    .await
            }
        }))
        .await;
        assert!(acks.iter().all(Result::is_ok), "{acks:?}");
        let mut topics = BTreeSet::new();
        while topics.len() < 64 {
            let m = sub.next().await.unwrap();
            assert_eq!(m.payload.len(), 1024);
            topics.insert(m.topic.clone());
            m.ack().unwrap();
        }
        // Larger than the whole outbox: refused at once.
        let err = client
            .publish("bulk.huge", vec![0u8; 8 * 1024], &qos1())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooLarge), "{err:?}");
        assert_eq!(client.stats().waiting_publishers, 0);
        client.close().await;
        observer.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_publish_loops_and_queued_publishes_arrive_in_order() {
    let srv = default_server().await;
    within(async {
        let addr = srv.local_addr();
        let observer = Client::connect(options(addr)).await.unwrap();
        let mut opts = SubscribeOptions::default();
        opts.credit = 1024;
        let mut sub = observer.subscribe("loop.>", &opts).await.unwrap();
        const N: u32 = 3_000;
        let reader = tokio::spawn(async move {
            let (mut from_async, mut from_blocking) = (Vec::new(), Vec::new());
            while from_async.len() + from_blocking.len() < 4 * N as usize {
                let m = sub.next().await.unwrap();
                let i = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
                match m.topic.as_str() {
                    "loop.async" => from_async.push(i),
                    _ => from_blocking.push(i),
                }
                m.ack().unwrap();
            }
            (from_async, from_blocking)
        });
        // A small room between the application and the session: the loops
        // below outrun the client's task, so they wait for room, in order.
        let mut popts = options(addr);
        popts.outbox_bytes = 8 * 1024;
        let client = Client::connect(popts.clone()).await.unwrap();
        for i in 0..N {
            let ack = client
                .publish("loop.async", i.to_be_bytes().to_vec(), &qos0())
                .await
                .unwrap();
            assert_eq!(ack.seq, None);
        }
        // QoS 1 queued without waiting for each acknowledgement.
        let mut receipts = Vec::new();
        for i in N..2 * N {
            receipts.push(
                client
                    .enqueue("loop.async", i.to_be_bytes().to_vec(), &qos1())
                    .await
                    .unwrap(),
            );
        }
        let mut last = 0;
        for r in receipts {
            let seq = r.await.unwrap().seq.expect("QoS 1 has a sequence");
            assert!(seq > last, "acknowledged in order");
            last = seq;
        }
        // The blocking client, the same way.
        let blocking_client = blocking_task(move || {
            let c = blocking::Client::connect(popts).unwrap();
            for i in 2 * N..3 * N {
                c.publish("loop.blocking", i.to_be_bytes().to_vec(), &qos0())
                    .unwrap();
            }
            let receipts: Vec<_> = (3 * N..4 * N)
                .map(|i| {
                    c.enqueue("loop.blocking", i.to_be_bytes().to_vec(), &qos1())
                        .unwrap()
                })
                .collect();
            for r in receipts {
                r.wait().unwrap();
            }
            c
        })
        .await;
        let (from_async, from_blocking) = reader.await.unwrap();
        assert_eq!(from_async, (0..2 * N).collect::<Vec<_>>());
        assert_eq!(from_blocking, (2 * N..4 * N).collect::<Vec<_>>());
        for stats in [client.stats(), blocking_client.stats()] {
            assert_eq!(stats.unsent_qos0, 0);
            assert_eq!(stats.room_bytes, 0);
        }
        blocking_task(move || blocking_client.close()).await;
        client.close().await;
        observer.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_are_fragmented_and_reassembled() {
    // The publisher fragments to the broker's maximum frame (1 MiB by default,
    // larger than the server's input budget: it must still take whole frames).
    let srv = start_server(BrokerConfig::default()).await;
    within(async {
        let addr = srv.local_addr();
        let publisher = Client::connect(options(addr)).await.unwrap();
        let mut opts = options(addr);
        // Smaller than the message: it arrives in pieces.
        opts.inbox_bytes = 64 * 1024;
        let subscriber = Client::connect(opts).await.unwrap();
        let mut sub = subscriber
            .subscribe("blobs", &SubscribeOptions::default())
            .await
            .unwrap();
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut popts = qos1();
        popts.reply_to = Some("somewhere".to_string());
        publisher
            .publish("blobs", payload.clone(), &popts)
            .await
            .unwrap();
        let m = sub.next().await.unwrap();
        assert_eq!(m.payload.len(), payload.len());
        assert!(m.payload[..] == payload[..]);
        assert_eq!(m.reply_to.as_deref(), Some("somewhere"));
        m.ack().unwrap();
        publisher.close().await;
        subscriber.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}
