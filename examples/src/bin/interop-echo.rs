//! The Rust side of the cross-language exchange: answers each request on
//! `interop.requests` (from the C and Python clients, `c/interop_client.c` and
//! `python/interop_client.py`) on `interop.replies.<from>`, upper-cased, where
//! `from` is the request's header. Prints `ready` once subscribed, then one
//! line per request, and exits after COUNT of them.
//! `cargo run -p mq-examples --bin interop-echo [ADDR [COUNT]]`

use std::io::Write;

use mq_examples::{connect, text};
use mq_std::blocking::{PublishOptions, SubscribeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(2).map_or(Ok(2), |n| n.parse())?;
    let client = connect()?;
    let requests = client.subscribe("interop.requests", &SubscribeOptions::default())?;
    println!("ready");
    std::io::stdout().flush()?;
    for _ in 0..count {
        let msg = requests.recv().ok_or("the subscription ended")?;
        let from = msg
            .header("from")
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .ok_or("a request without a `from` header")?;
        let body = text(&msg);
        client.publish(
            &format!("interop.replies.{from}"),
            body.to_uppercase(),
            &PublishOptions::default(),
        )?;
        println!("echoed {from}: {body}");
        std::io::stdout().flush()?;
        msg.ack()?;
    }
    Ok(())
}
