//! Admin requests through the async and blocking clients against an
//! in-process server: listings, purge and delete, and the admin permission.

mod support;

use std::time::Duration;

use mq_core::broker::{Auth, Config as BrokerConfig, Permissions};
use mq_std::blocking;
use mq_std::client::{Admin, AdminReply, Client, Error, Reason, Start, SubscribeOptions};
use support::*;

fn tokens() -> BrokerConfig {
    let app = Permissions {
        admin: false,
        ..Permissions::all()
    };
    BrokerConfig {
        auth: Auth {
            tokens: vec![
                ("ops".to_string(), Permissions::all()),
                ("app".to_string(), app),
            ],
            ..Auth::default()
        },
        ..BrokerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_lists_purges_and_deletes() {
    let srv = start_server(tokens()).await;
    within(async {
        let mut opts = options(srv.local_addr());
        opts.token = Some("ops".into());
        let ops = Client::connect(opts).await.unwrap();
        for i in 0..5u8 {
            ops.publish("orders.eu", vec![i], &qos1()).await.unwrap();
        }
        let AdminReply::Topics { topics, .. } = ops.admin(Admin::Topics).await.unwrap() else {
            panic!()
        };
        let t = topics.iter().find(|t| t.name == "orders.eu").unwrap();
        assert_eq!((t.first_seq, t.last_seq, t.retained), (1, 5, 5));

        let purged = ops
            .admin(Admin::Purge {
                topic: "orders.eu".into(),
                before: 4,
            })
            .await
            .unwrap();
        assert_eq!(
            purged,
            AdminReply::Purged {
                retained: 3,
                queued: 0
            }
        );
        // A replay from the start sees only what is left.
        let mut from_start = SubscribeOptions::default();
        from_start.start = Start::Seq(0);
        let mut sub = ops.subscribe("orders.eu", &from_start).await.unwrap();
        let first = sub.next().await.unwrap();
        assert_eq!((first.seq, &first.payload[..]), (4, &[3u8][..]));

        let AdminReply::Messages(list) = ops
            .admin(Admin::Messages {
                topic: "orders.eu".into(),
                from: 0,
                limit: 10,
                max_payload: 16,
            })
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(list.total, 2);
        assert_eq!(list.messages[1].payload, [4]);

        let AdminReply::Sessions { sessions, .. } = ops.admin(Admin::Sessions).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].subscriptions[0].filter, "orders.eu");

        let deleted = ops
            .admin(Admin::DeleteTopic {
                topic: "orders.eu".into(),
            })
            .await
            .unwrap();
        assert!(matches!(deleted, AdminReply::Deleted { retained: 2, .. }));
        let err = ops
            .admin(Admin::DeleteTopic {
                topic: "orders.eu".into(),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Rejected(Reason::UnknownId)), "{err:?}");
        ops.close().await;
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_admin_is_refused_and_the_client_goes_on() {
    let srv = start_server(tokens()).await;
    let addr = srv.local_addr();
    within(blocking_task(move || {
        let mut opts = options(addr);
        opts.token = Some("app".into());
        let app = blocking::Client::connect(opts).unwrap();
        app.publish("t", "x", &qos1()).unwrap();
        let err = app
            .admin(
                Admin::Purge {
                    topic: "t".into(),
                    before: 10,
                },
                Duration::from_secs(5),
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::Rejected(Reason::NotAuthorized)),
            "{err:?}"
        );
        // The session is unharmed.
        app.publish("t", "y", &qos1()).unwrap();
        app.close();
    }))
    .await;
    srv.shutdown().await.unwrap();
}
