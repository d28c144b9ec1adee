//! One-to-one: a sender and a receiver; every message to the one receiver.
//! `cargo run -p mq-examples --bin one-to-one [ADDR]`

use mq_examples::{connect, next, text};
use mq_std::blocking::{PublishOptions, SubscribeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let receiver = connect()?;
    let orders = receiver.subscribe("orders.created", &SubscribeOptions::default())?;
    let sender = connect()?;
    for i in 1..=3 {
        let order = format!("order {i}");
        sender.publish("orders.created", order.clone(), &PublishOptions::default())?;
        println!("sent: {order}");
    }
    for _ in 1..=3 {
        let msg = next(&orders)?;
        println!("received: {}", text(&msg));
        msg.ack()?;
    }
    Ok(())
}
