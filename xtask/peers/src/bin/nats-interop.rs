//! The NATS interop scenarios with the `async-nats` client, run by `cargo
//! xtask nats` (a step of `cargo xtask ci`) against nats-server and against
//! mqd's NATS port. The same scenarios as `xtask/nats/interop.py` (nats-py);
//! each prints `name<TAB>result`, and the two servers must give the same
//! results (or the difference listed in `xtask/src/nats.rs`).
//!
//! `nats-interop nats://127.0.0.1:4222`

use std::time::Duration;

use async_nats::{Client, HeaderMap, RequestErrorKind, Subscriber};
use futures::StreamExt;

/// How long a message may take to arrive.
const WAIT: Duration = Duration::from_secs(5);
/// How long to wait for a message that must not come.
const SILENCE: Duration = Duration::from_millis(300);

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    // Subjects of their own per run, so runs against one server never meet.
    let run = format!("i{}", std::process::id());
    let client = match async_nats::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot connect to {url}: {e}");
            std::process::exit(2);
        }
    };
    let scenarios: [(&str, Scenario); 7] = [
        ("pub/sub", pub_sub),
        ("wildcards", wildcards),
        ("queue group", queue_group),
        ("request-reply", request_reply),
        ("no responders", no_responders),
        ("headers", headers),
        ("unsub max", unsub_max),
    ];
    for (name, scenario) in scenarios {
        let result = match scenario(
            client.clone(),
            format!("{run}.{}", name.replace(['/', ' '], "_")),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => format!("FAILED: {e}"),
        };
        println!("{name}\t{result}");
    }
}

type Scenario = fn(Client, String) -> futures::future::BoxFuture<'static, Res<String>>;

/// The payloads of what arrives within `WAIT`, then `SILENCE` without more.
async fn collect(sub: &mut Subscriber, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < want {
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(m)) => got.push(String::from_utf8_lossy(&m.payload).into_owned()),
            _ => break,
        }
    }
    while let Ok(Some(m)) = tokio::time::timeout(SILENCE, sub.next()).await {
        got.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    got
}

fn pub_sub(c: Client, s: String) -> futures::future::BoxFuture<'static, Res<String>> {
    Box::pin(async move {
        let mut sub = c.subscribe(s.clone()).await?;
        c.flush().await?;
        for p in ["a", "b", "c"] {
            c.publish(s.clone(), p.into()).await?;
        }
        c.flush().await?;
        Ok(collect(&mut sub, 3).await.join(" "))
    })
}

fn wildcards(c: Client, s: String) -> futures::future::BoxFuture<'static, Res<String>> {
    Box::pin(async move {
        let mut one = c.subscribe(format!("{s}.*")).await?;
        let mut all = c.subscribe(format!("{s}.>")).await?;
        c.flush().await?;
        for t in ["x", "x.y", "z"] {
            c.publish(format!("{s}.{t}"), t.into()).await?;
        }
        c.flush().await?;
        let mut one = collect(&mut one, 2).await;
        let mut all = collect(&mut all, 3).await;
        one.sort();
        all.sort();
        Ok(format!("*: {} >: {}", one.join(","), all.join(",")))
    })
}

fn queue_group(c: Client, s: String) -> futures::future::BoxFuture<'static, Res<String>> {
    Box::pin(async move {
        let mut w1 = c.queue_subscribe(s.clone(), "workers".into()).await?;
        let mut w2 = c.queue_subscribe(s.clone(), "workers".into()).await?;
        let mut all = c.subscribe(s.clone()).await?;
        c.flush().await?;
        for i in 0..20 {
            c.publish(s.clone(), i.to_string().into()).await?;
        }
        c.flush().await?;
        let everyone = collect(&mut all, 20).await.len();
        let (a, b) = (collect(&mut w1, 1).await, collect(&mut w2, 1).await);
        let mut shared: Vec<u32> = a.iter().chain(&b).filter_map(|p| p.parse().ok()).collect();
        shared.sort_unstable();
        let once_each = shared == (0..20).collect::<Vec<_>>();
        Ok(format!(
            "group got each once: {once_each}, plain subscriber got {everyone}"
        ))
    })
}

fn request_reply(c: Client, s: String) -> futures::future::BoxFuture<'static, Res<String>> {
    Box::pin(async move {
        let mut service = c.queue_subscribe(s.clone(), "svc".into()).await?;
        c.flush().await?;
        let responder = c.clone();
        let serve = tokio::spawn(async move {
            if let Some(m) = service.next().await
                && let Some(reply) = m.reply
            {
                let answer = String::from_utf8_lossy(&m.payload).to_uppercase();
                let _ = responder.publish(reply, answer.into()).await;
                let _ = responder.flush().await;
            }
        });
        let answer = tokio::time::timeout(WAIT, c.request(s, "ping".into())).await??;
        serve.await?;
        Ok(format!(
            "answer {}",
            String::from_utf8_lossy(&answer.payload)
        ))
    })
}

fn no_responders(c: Client, s: String) -> futures::future::BoxFuture<'static, Res<String>> {
    Box::pin(async move {
        match tokio::time::timeout(WAIT, c.request(s, "anyone?".into())).await? {
            Ok(m) => Ok(format!("answered: {:?}", m.payload)),
            Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok("no responders".into()),
            Err(e) => Ok(format!("other error: {e}")),
        }
    })
}

fn headers(c: Client, s: String) -> futures::future::BoxFuture<'static, Res<String>> {
    Box::pin(async move {
        let mut sub = c.subscribe(s.clone()).await?;
        c.flush().await?;
        let mut h = HeaderMap::new();
        h.insert("Trace-Id", "42");
        h.append("A", "b");
        h.append("A", "c");
        c.publish_with_headers(s, h, "body".into()).await?;
        c.flush().await?;
        let m = tokio::time::timeout(WAIT, sub.next())
            .await?
            .ok_or("subscription ended")?;
        let h = m.headers.ok_or("no headers arrived")?;
        let mut a: Vec<&str> = h.get_all("A").map(|v| v.as_str()).collect();
        a.sort_unstable();
        let trace = h.get("Trace-Id").map(|v| v.as_str().to_string());
        Ok(format!(
            "Trace-Id={} A={} body={}",
            trace.unwrap_or_default(),
            a.join(","),
            String::from_utf8_lossy(&m.payload)
        ))
    })
}

fn unsub_max(c: Client, s: String) -> futures::future::BoxFuture<'static, Res<String>> {
    Box::pin(async move {
        let mut sub = c.subscribe(s.clone()).await?;
        sub.unsubscribe_after(2).await?;
        c.flush().await?;
        for p in ["1", "2", "3", "4", "5"] {
            c.publish(s.clone(), p.into()).await?;
        }
        c.flush().await?;
        Ok(format!("got {}", collect(&mut sub, 2).await.join(" ")))
    })
}
