//! Many-to-many: three publishers on their own topics, two subscribers on a
//! wildcard filter; each subscriber gets every publisher's messages.
//! `cargo run -p mq-examples --bin many-to-many [ADDR]`

use mq_examples::{connect, next, text};
use mq_std::blocking::{PublishOptions, SubscribeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut subscribers = Vec::new();
    for name in ["dashboard", "archive"] {
        let client = connect()?;
        let sub = client.subscribe("sensors.>", &SubscribeOptions::default())?;
        subscribers.push((name, client, sub));
    }
    let publishers = ["sensors.a", "sensors.b", "sensors.c"]
        .into_iter()
        .map(|topic| Ok((topic, connect()?)))
        .collect::<Result<Vec<_>, mq_std::blocking::Error>>()?;
    for reading in 1..=2 {
        for (topic, client) in &publishers {
            client.publish(topic, format!("{reading}"), &PublishOptions::default())?;
        }
    }
    for (name, _, sub) in &subscribers {
        let mut seen = Vec::new();
        for _ in 0..2 * publishers.len() {
            let msg = next(sub)?;
            seen.push(format!("{}={}", msg.topic, text(&msg)));
            msg.ack()?;
        }
        seen.sort();
        println!("{name}: {}", seen.join(" "));
    }
    Ok(())
}
