//! Producer-consumer (competing consumers): two consumers in a group take one
//! job at a time (credit 1) and ack each when done; a job that fails is nacked
//! and the broker hands it out again.
//! `cargo run -p mq-examples --bin producer-consumer [ADDR]`

use std::time::{Duration, Instant};

use mq_examples::{PATIENCE, connect, text};
use mq_std::blocking::{PublishOptions, SubscribeOptions};

const JOBS: usize = 6;
/// This job fails on its first attempt.
const FLAKY: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let client = connect()?;
        let mut opts = SubscribeOptions::group("jobs");
        opts.credit = 1;
        let sub = client.subscribe("jobs", &opts)?;
        consumers.push((client, sub));
    }
    let producer = connect()?;
    for job in 1..=JOBS {
        producer.publish("jobs", format!("{job}"), &PublishOptions::default())?;
    }
    let mut done_on = [0u16; JOBS + 1];
    let mut retried = 0;
    let deadline = Instant::now() + PATIENCE;
    while done_on[1..].contains(&0) && Instant::now() < deadline {
        for (_, sub) in &consumers {
            let Ok(msg) = sub.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            let job: usize = text(&msg).parse()?;
            if job == FLAKY && msg.attempt == 1 {
                retried += 1;
                msg.nack(true)?;
            } else {
                done_on[job] = msg.attempt;
                msg.ack()?;
            }
        }
    }
    for (job, attempt) in done_on.iter().enumerate().skip(1) {
        println!("job {job}: done on attempt {attempt}");
    }
    println!("{JOBS} jobs done, {retried} retried");
    Ok(())
}
