//! The async and blocking clients against an in-process server, over real TCP.
//! Every test is bounded in time.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use bytes::Bytes;
use mq_core::broker::{Auth, Config as BrokerConfig, Permissions};
use mq_std::blocking;
use mq_std::client::{
    Client, ClientOptions, Error, PublishOptions, QoS, Reason, SessionMode, State, SubscribeOptions,
};
use mq_std::server::{self, ServerHandle, ServerOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The most any test may take.
const LIMIT: Duration = Duration::from_secs(30);

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test did not finish in time")
}

async fn start_server(broker: BrokerConfig) -> ServerHandle {
    server::spawn(ServerOptions {
        broker,
        ..ServerOptions::default()
    })
    .await
    .expect("server starts")
}

async fn default_server() -> ServerHandle {
    start_server(BrokerConfig::default()).await
}

fn options(addr: SocketAddr) -> ClientOptions {
    ClientOptions::new(addr.to_string())
}

fn qos0() -> PublishOptions {
    PublishOptions::new(QoS::AtMostOnce)
}

fn qos1() -> PublishOptions {
    PublishOptions::new(QoS::AtLeastOnce)
}

/// Runs blocking client code off the runtime's worker threads, bounded in time.
async fn blocking_task<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    within(tokio::task::spawn_blocking(f))
        .await
        .expect("blocking task panicked")
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync_clone::<Client>();
    send_sync_clone::<blocking::Client>();
    send::<mq_std::client::Subscription>();
    send::<blocking::Subscription>();
    send::<blocking::Listener>();
    send::<mq_std::client::Message>();
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    error::<Error>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_reports_stats_and_closes() {
    let srv = default_server().await;
    within(async {
        let client = Client::connect(options(srv.local_addr())).await.unwrap();
        assert!(client.client_id().starts_with("mq-"));
        assert_eq!(client.stats().state, State::Connected);
        client.close().await;
        let err = client
            .publish("a.b", "x", &qos1())
            .await
            .expect_err("publish after close");
        assert!(matches!(err, Error::Closed(Reason::Normal)), "{err:?}");
        assert_eq!(client.stats().state, State::Closed);
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_fast() {
    within(async {
        // Nothing listens on a port we just freed.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = Client::connect(options(addr)).await.unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err:?}");
        let err = blocking_task(move || blocking::Client::connect(options(addr)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err:?}");

        let broker = BrokerConfig {
            auth: Auth {
                tokens: vec![("secret".to_string(), Permissions::all())],
            },
            ..BrokerConfig::default()
        };
        let srv = start_server(broker).await;
        let mut opts = options(srv.local_addr());
        opts.token = Some("wrong".to_string());
        let err = Client::connect(opts.clone()).await.unwrap_err();
        assert!(matches!(err, Error::Refused(Reason::BadToken)), "{err:?}");
        let err = blocking_task(move || blocking::Client::connect(opts))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Refused(Reason::BadToken)), "{err:?}");
        let mut opts = options(srv.local_addr());
        opts.token = Some("secret".to_string());
        Client::connect(opts).await.unwrap().close().await;

        let mut opts = options(srv.local_addr());
        opts.client_id = "x".repeat(65);
        let err = Client::connect(opts).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        let mut opts = options(srv.local_addr());
        opts.credit = 1 << 20;
        let err = Client::connect(opts).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        let mut opts = options(srv.local_addr());
        opts.outbox_bytes = usize::MAX;
        let err = blocking_task(move || blocking::Client::connect(opts))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        // Whatever the broker makes of it, nothing panics.
        let mut opts = options(srv.local_addr());
        opts.client_id = "nul\0id".to_string();
        if let Ok(c) = blocking_task(move || blocking::Client::connect(opts)).await {
            blocking_task(move || c.close()).await;
        }
        srv.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_and_qos1_round_trip() {
    let srv = default_server().await;
    within(async {
        let client = Client::connect(options(srv.local_addr())).await.unwrap();
        let mut sub = client
            .subscribe("sensors.*.temp", &SubscribeOptions::default())
            .await
            .unwrap();
        let ack = client
            .publish("sensors.kitchen.temp", "21.5", &qos0())
            .await
            .unwrap();
        assert_eq!(ack.seq, None);
        let mut opts = qos1();
        opts.headers = vec![("unit".to_string(), Bytes::from_static(b"C"))];
        opts.ttl = Some(Duration::from_secs(60));
        let ack = client
            .publish("sensors.hall.temp", "19.0", &opts)
            .await
            .unwrap();
        assert!(ack.seq.is_some());
        assert!(!ack.duplicate);

        let first = sub.next().await.unwrap();
        assert_eq!(first.topic, "sensors.kitchen.temp");
        assert_eq!(first.qos, QoS::AtMostOnce);
        assert!(!first.needs_ack());
        assert_eq!(&first.payload[..], b"21.5");
        let second = sub.next().await.unwrap();
        assert_eq!(second.topic, "sensors.hall.temp");
        assert_eq!(second.qos, QoS::AtLeastOnce);
        assert_eq!(second.seq, ack.seq.unwrap());
        assert_eq!(second.attempt, 1);
        assert_eq!(second.header("unit").map(|v| &v[..]), Some(&b"C"[..]));
        assert_eq!(second.ttl, Some(Duration::from_secs(60)));
        assert!(second.needs_ack());
        second.ack().unwrap();

        let err = client
            .publish("bad..topic", "x", &qos1())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        let err = client
            .subscribe("a.>.b", &SubscribeOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        client.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_compete() {
    let srv = default_server().await;
    within(async {
        let addr = srv.local_addr();
        let a = Client::connect(options(addr)).await.unwrap();
        let b = Client::connect(options(addr)).await.unwrap();
        let publisher = Client::connect(options(addr)).await.unwrap();
        let group = SubscribeOptions::group("workers");
        let mut sa = a.subscribe("jobs", &group).await.unwrap();
        let mut sb = b.subscribe("jobs", &group).await.unwrap();
        const N: usize = 200;
        for i in 0..N {
            publisher
                .publish("jobs", i.to_string(), &qos1())
                .await
                .unwrap();
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let consumers = [(0, &mut sa), (1, &mut sb)].map(|(who, sub)| {
            let tx = tx.clone();
            async move {
                while let Some(msg) = sub.next().await {
                    tx.send((who, String::from_utf8(msg.payload.to_vec()).unwrap()))
                        .unwrap();
                    msg.ack().unwrap();
                }
            }
        });
        let [ca, cb] = consumers;
        let collect = async {
            let mut seen = BTreeSet::new();
            let mut per = [0usize; 2];
            while seen.len() < N {
                let (who, payload) = rx.recv().await.unwrap();
                assert!(seen.insert(payload), "a message went to both members");
                per[who] += 1;
            }
            per
        };
        let per = tokio::select! {
            per = collect => per,
            () = async { tokio::join!(ca, cb); } => unreachable!("subscriptions ended"),
        };
        assert!(per[0] > 0 && per[1] > 0, "one member got nothing: {per:?}");
        a.close().await;
        b.close().await;
        publisher.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply() {
    let srv = default_server().await;
    within(async {
        let addr = srv.local_addr();
        let responder = Client::connect(options(addr)).await.unwrap();
        let requester = Client::connect(options(addr)).await.unwrap();
        let mut service = responder
            .subscribe("math.double", &SubscribeOptions::default())
            .await
            .unwrap();
        let serve = {
            let responder = responder.clone();
            tokio::spawn(async move {
                while let Some(req) = service.next().await {
                    let n: u64 = std::str::from_utf8(&req.payload).unwrap().parse().unwrap();
                    responder.reply(&req, (2 * n).to_string()).await.unwrap();
                    req.ack().unwrap();
                }
            })
        };
        let timeout = Duration::from_secs(10);
        for n in [1u64, 21, 1000] {
            let reply = requester
                .request("math.double", n.to_string(), timeout)
                .await
                .unwrap();
            assert_eq!(reply.payload, Bytes::from((2 * n).to_string()));
        }
        // Concurrent requests each get their own answer.
        let answers = futures_join_all((0..20u64).map(|n| {
            let requester = requester.clone();
            async move {
                let r = requester
                    .request("math.double", n.to_string(), timeout)
                    .await
                    .unwrap();
                (n, r.payload.clone())
            }
        }))
        .await;
        for (n, payload) in answers {
            assert_eq!(payload, Bytes::from((2 * n).to_string()));
        }
        // Nobody answers on this topic.
        let err = requester
            .request("nobody.home", "?", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err:?}");
        responder.close().await;
        requester.close().await;
        serve.await.unwrap();
    })
    .await;
    srv.shutdown().await.unwrap();
}

/// Runs futures concurrently (no `futures` dependency needed).
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_and_drop_redeliver_and_dead_letter() {
    let mut broker = BrokerConfig::default();
    broker.backoff.initial = Duration::from_millis(10);
    broker.backoff.max = Duration::from_millis(50);
    let srv = start_server(broker).await;
    within(async {
        let client = Client::connect(options(srv.local_addr())).await.unwrap();
        let mut sub = client
            .subscribe("orders", &SubscribeOptions::default())
            .await
            .unwrap();
        let mut dlq = client
            .subscribe("$dlq.orders", &SubscribeOptions::default())
            .await
            .unwrap();
        client.publish("orders", "o-1", &qos1()).await.unwrap();

        let m = sub.next().await.unwrap();
        assert_eq!(m.attempt, 1);
        m.nack(true).unwrap();
        let m = sub.next().await.unwrap();
        assert_eq!((&m.payload[..], m.attempt), (&b"o-1"[..], 2));
        // Dropped without a decision: nacked for redelivery.
        drop(m);
        let m = sub.next().await.unwrap();
        assert_eq!(m.attempt, 3);
        m.ack().unwrap();

        client.publish("orders", "o-2", &qos1()).await.unwrap();
        let m = sub.next().await.unwrap();
        assert_eq!(&m.payload[..], b"o-2");
        m.nack(false).unwrap();
        let dead = dlq.next().await.unwrap();
        assert_eq!(dead.topic, "$dlq.orders");
        assert_eq!(&dead.payload[..], b"o-2");
        dead.ack().unwrap();

        // Acked messages do not come back.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), sub.next())
                .await
                .is_err()
        );
        client.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_takes_the_session_over() {
    let srv = default_server().await;
    within(async {
        let mut opts = options(srv.local_addr());
        opts.client_id = "same-id".to_string();
        opts.session = SessionMode::Resume;
        let first = Client::connect(opts.clone()).await.unwrap();
        first.publish("t", "before", &qos1()).await.unwrap();
        let second = Client::connect(opts.clone()).await.unwrap();

        // The first client's session ends for good: no reconnect war.
        let err = loop {
            match first.publish("t", "after", &qos1()).await {
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, Error::Closed(Reason::SessionTakenOver)),
            "{err:?}"
        );
        assert_eq!(first.stats().state, State::Closed);
        let err = first
            .subscribe("t", &SubscribeOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Closed(Reason::SessionTakenOver)),
            "{err:?}"
        );
        second.publish("t", "still here", &qos1()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(second.stats().state, State::Connected);
        assert_eq!(second.stats().session.reconnects, 0);
        second.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

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
async fn blocking_and_async_clients_talk() {
    let srv = default_server().await;
    let addr = srv.local_addr();
    within(async move {
        // A blocking responder with a callback, an async requester.
        let responder = blocking_task(move || blocking::Client::connect(options(addr)))
            .await
            .unwrap();
        let r = responder.clone();
        let replier = responder.clone();
        let listener = blocking_task(move || {
            r.subscribe_with(
                "echo",
                &SubscribeOptions::default(),
                move |msg: blocking::Message| {
                    let mut answer = b"echo: ".to_vec();
                    answer.extend_from_slice(&msg.payload);
                    replier.reply(&msg, answer).unwrap();
                    msg.ack().unwrap();
                },
            )
        })
        .await
        .unwrap();
        let requester = Client::connect(options(addr)).await.unwrap();
        let reply = requester
            .request("echo", "hi", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(&reply.payload[..], b"echo: hi");

        // An async publisher, a blocking subscriber with recv / recv_timeout /
        // try_recv / iter; and a blocking requester of the async world.
        let b = responder.clone();
        let sub = blocking_task(move || b.subscribe("feed", &SubscribeOptions::default()))
            .await
            .unwrap();
        for i in 0..10 {
            requester
                .publish("feed", i.to_string(), &qos1())
                .await
                .unwrap();
        }
        let got = blocking_task(move || {
            let mut got = vec![sub.recv().unwrap()];
            got.push(sub.recv_timeout(Duration::from_secs(5)).unwrap());
            got.extend(sub.iter().take(8));
            let empty = sub.try_recv();
            assert!(matches!(empty, Err(blocking::TryRecvError::Empty)));
            got.into_iter()
                .map(|m| {
                    let s = String::from_utf8(m.payload.to_vec()).unwrap();
                    m.ack().unwrap();
                    s
                })
                .collect::<Vec<_>>()
        })
        .await;
        let want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(got, want);

        let mut service = requester
            .subscribe("time.now", &SubscribeOptions::default())
            .await
            .unwrap();
        let a = requester.clone();
        let serve = tokio::spawn(async move {
            let req = service.next().await.unwrap();
            a.reply(&req, "noon").await.unwrap();
            req.ack().unwrap();
        });
        let b = responder.clone();
        let answer = blocking_task(move || b.request("time.now", "", Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(&answer.payload[..], b"noon");
        serve.await.unwrap();

        let b = responder.clone();
        blocking_task(move || {
            listener.unsubscribe();
            let ack = b
                .publish_timeout("feed", "late", &qos1(), Duration::from_secs(5))
                .unwrap();
            assert!(ack.seq.is_some());
            b.close();
            let err = b.publish("feed", "x", &qos1()).unwrap_err();
            assert!(matches!(err, Error::Closed(Reason::Normal)), "{err:?}");
        })
        .await;
        requester.close().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_closes_the_session() {
    let srv = default_server().await;
    within(async {
        let client = Client::connect(options(srv.local_addr())).await.unwrap();
        let mut sub = client
            .subscribe("x", &SubscribeOptions::default())
            .await
            .unwrap();
        let mut too_big = SubscribeOptions::default();
        too_big.credit = 70_000;
        let err = client.subscribe("x", &too_big).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        drop(client);
        assert!(sub.next().await.is_none());
        let (tx, rx) = std_mpsc::channel();
        let addr = srv.local_addr();
        let sub = blocking_task(move || {
            let c = blocking::Client::connect(options(addr)).unwrap();
            let sub = c.subscribe("x", &SubscribeOptions::default()).unwrap();
            tx.send(()).unwrap();
            sub
        })
        .await;
        rx.recv().unwrap();
        assert!(blocking_task(move || sub.recv()).await.is_none());
    })
    .await;
    srv.shutdown().await.unwrap();
}
