//! The admin JSON API on the HTTP port, driven over a socket as curl would:
//! listings, purge and delete with and without an admin token, bad requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mq_client::client::{Client, ClientOptions, PublishOptions, QoS};
use mq_core::broker::{Auth, Config as BrokerConfig, Permissions};
use mq_server::http::{HttpOptions, SharedAuth, serve};
use mq_server::server::{self, ServerHandle, ServerOptions};
use serde_json::Value;

/// An in-process server with tokens `ops` (admin) and `app` (not), and its
/// HTTP port.
async fn start() -> (ServerHandle, SocketAddr) {
    let (srv, addr, _) = start_shared().await;
    (srv, addr)
}

/// [`start`], with the tokens the HTTP port checks (as a reload replaces them).
async fn start_shared() -> (ServerHandle, SocketAddr, SharedAuth) {
    let app = Permissions {
        admin: false,
        ..Permissions::all()
    };
    let auth = Auth {
        tokens: vec![("ops".into(), Permissions::all()), ("app".into(), app)],
        ..Auth::default()
    };
    let srv = server::spawn(ServerOptions {
        broker: BrokerConfig {
            auth: auth.clone(),
            ..BrokerConfig::default()
        },
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = SharedAuth::new(auth);
    let opts = HttpOptions {
        control: srv.control(),
        auth: shared.clone(),
        tls: None,
    };
    tokio::spawn(serve(listener, opts));
    (srv, addr, shared)
}

/// Sends raw bytes; returns the status code and the body.
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

/// One request; the body parsed as JSON.
fn call(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!("{method} {path} HTTP/1.1\r\nHost: mq\r\n{auth}\r\n");
    let (status, body) = raw(addr, req.as_bytes());
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_purges_and_deletes_with_an_admin_token() {
    let (srv, http) = start().await;
    let mut opts = ClientOptions::new(srv.local_addr().to_string());
    opts.token = Some("app".into());
    let client = Client::connect(opts).await.unwrap();
    let mut qos1 = PublishOptions::default();
    qos1.qos = QoS::AtLeastOnce;
    for i in 1..=5 {
        client
            .publish("orders.eu", format!("order {i}"), &qos1)
            .await
            .unwrap();
    }
    blocking(move || {
        let (status, topics) = call(http, "GET", "/api/topics", None);
        assert_eq!(status, 200, "{topics}");
        let t = &topics["topics"][0];
        assert_eq!(t["name"], "orders.eu");
        assert_eq!((t["first_seq"].as_u64(), t["last_seq"].as_u64()), (Some(1), Some(5)));
        assert_eq!(t["messages_in"], 5);

        let (status, sessions) = call(http, "GET", "/api/sessions", None);
        assert_eq!(status, 200);
        assert_eq!(sessions["sessions"][0]["connected"], true);

        let (status, list) = call(
            http,
            "GET",
            "/api/topics/orders.eu/messages?from=2&limit=2&max_payload=5",
            None,
        );
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["total"], 5);
        assert_eq!(list["messages"][0]["seq"], 2);
        assert_eq!(list["messages"][0]["payload"], "order");
        assert_eq!(list["messages"].as_array().unwrap().len(), 2);

        // Purge: no token, a token without admin, then the admin token.
        let purge = "/api/topics/orders.eu/purge?before=4";
        let (status, err) = call(http, "POST", purge, None);
        assert_eq!(status, 401);
        assert!(err["error"].as_str().unwrap().contains("Bearer"), "{err}");
        let (status, err) = call(http, "POST", purge, Some("app"));
        assert_eq!(status, 403);
        assert!(err["error"].as_str().unwrap().contains("admin"), "{err}");
        let (status, err) = call(http, "POST", purge, Some("nope"));
        assert_eq!(status, 401, "{err}");
        let (status, done) = call(http, "POST", purge, Some("ops"));
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["purged"]["retained"], 3);
        let (_, topics) = call(http, "GET", "/api/topics", None);
        assert_eq!(topics["topics"][0]["first_seq"], 4);

        // A JSON body says `before` as well.
        let body = r#"{"before": 5}"#;
        let req = format!(
            "POST /api/topics/orders.eu/purge HTTP/1.1\r\nAuthorization: Bearer ops\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, done) = raw(http, req.as_bytes());
        assert_eq!(status, 200, "{done}");
        assert!(done.contains("\"retained\": 1"), "{done}");

        let (status, done) = call(http, "DELETE", "/api/topics/orders.eu", Some("ops"));
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["deleted"]["retained"], 1);
        let (status, err) = call(http, "DELETE", "/api/topics/orders.eu", Some("ops"));
        assert_eq!(status, 404, "{err}");
        assert_eq!(err["reason"], "unknown id");
    })
    .await;
    client.close().await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_port_keeps_serving() {
    let (srv, http) = start().await;
    blocking(move || {
        let (status, err) = call(http, "GET", "/api/topics/a/messages?limit=lots", None);
        assert_eq!(status, 400);
        assert!(err["error"].as_str().unwrap().contains("limit"), "{err}");
        let (status, err) = call(http, "GET", "/api/topics/a/messages?limit=10001", None);
        assert_eq!(status, 400);
        assert!(
            err["error"].as_str().unwrap().contains("at most 10000"),
            "{err}"
        );
        let (status, err) = call(http, "GET", "/api/topics/nope/messages", None);
        assert_eq!(status, 404, "{err}");
        let (status, err) = call(http, "GET", "/api/topics/a..b/messages", None);
        assert_eq!(status, 400, "{err}");
        let (status, _) = call(http, "GET", "/api/nothing", None);
        assert_eq!(status, 404);
        let (status, _) = call(http, "PUT", "/api/topics", None);
        assert_eq!(status, 405);
        let (status, err) = call(http, "POST", "/api/topics/a/purge", Some("ops"));
        assert_eq!(status, 400, "{err}");
        let (status, body) = raw(http, b"NONSENSE\r\n\r\n");
        assert_eq!(status, 400, "{body}");
        let (status, body) = raw(http, b"GET / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n");
        assert_eq!(status, 400, "{body}");
        // Still serving.
        let (status, body) = raw(http, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status, 200);
        assert!(body.contains("mq_messages_in_total"));
        let (status, overview) = call(http, "GET", "/api/overview", None);
        assert_eq!(status, 200);
        assert_eq!(overview["messages_in"], 0);
    })
    .await;
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_revokes_a_token_revokes_it_here_too() {
    let (srv, addr, shared) = start_shared().await;
    // Authorized, so the answer is about the topic (there is none).
    let purge = "/api/topics/a.b/purge?before=1";
    let (status, _) = blocking(move || call(addr, "POST", purge, Some("ops"))).await;
    assert_eq!(status, 404);
    // The reload's new tokens: `ops` is gone.
    shared.set(Auth {
        tokens: vec![("root".into(), Permissions::all())],
        ..Auth::default()
    });
    let (status, body) = blocking(move || call(addr, "POST", purge, Some("ops"))).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = blocking(move || call(addr, "POST", purge, Some("root"))).await;
    assert_eq!(status, 404);
    srv.shutdown().await.unwrap();
}
