//! One-to-many (fan-out): every subscriber gets every message.
//! `cargo run -p mq-examples --bin one-to-many [ADDR]`

use mq_examples::{connect, next, text};
use mq_std::blocking::{PublishOptions, SubscribeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let client = connect()?;
        let sub = client.subscribe("news", &SubscribeOptions::default())?;
        subscribers.push((client, sub));
    }
    let publisher = connect()?;
    for i in 1..=2 {
        let headline = format!("headline {i}");
        publisher.publish("news", headline.clone(), &PublishOptions::default())?;
        println!("published: {headline}");
    }
    for (n, (_, sub)) in subscribers.iter().enumerate() {
        for _ in 1..=2 {
            let msg = next(sub)?;
            println!("subscriber {} received: {}", n + 1, text(&msg));
            msg.ack()?;
        }
    }
    Ok(())
}
