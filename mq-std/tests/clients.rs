//! The async and blocking clients against an in-process server, over real TCP:
//! connecting, publishing, subscribing, groups, request-reply, settling,
//! session takeover, closing. Every test is bounded in time.
//! (`client_flow.rs` has reconnects, backpressure and large messages.)

mod support;

use std::collections::BTreeSet;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use bytes::Bytes;
use mq_core::broker::{Auth, Config as BrokerConfig, Permissions};
use mq_std::blocking;
use mq_std::client::{Client, Error, QoS, Reason, SessionMode, State, SubscribeOptions};
use support::*;

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
                ..Auth::default()
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
