//! One-to-one-of-many: three workers in one group share the tasks; each task
//! goes to exactly one of them.
//! `cargo run -p mq-examples --bin one-to-one-of-many [ADDR]`

use std::time::{Duration, Instant};

use mq_examples::{PATIENCE, connect, text};
use mq_std::blocking::{PublishOptions, SubscribeOptions};

const TASKS: usize = 6;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workers = (0..3)
        .map(|_| {
            let client = connect()?;
            let sub = client.subscribe("tasks", &SubscribeOptions::group("workers"))?;
            Ok((client, sub))
        })
        .collect::<Result<Vec<_>, mq_std::blocking::Error>>()?;
    let producer = connect()?;
    for i in 1..=TASKS {
        producer.publish("tasks", format!("{i}"), &PublishOptions::default())?;
    }
    // Take from every worker until all tasks arrived and a while after, so a
    // task delivered twice would be seen.
    let mut deliveries = [0usize; TASKS + 1];
    let deadline = Instant::now() + PATIENCE;
    let mut quiet_since = None;
    while Instant::now() < deadline {
        let mut got = false;
        for (_, sub) in &workers {
            if let Ok(msg) = sub.recv_timeout(Duration::from_millis(50)) {
                let task: usize = text(&msg).parse()?;
                deliveries[task] += 1;
                msg.ack()?;
                got = true;
            }
        }
        let all = deliveries[1..].iter().all(|&n| n > 0);
        if got || !all {
            quiet_since = None;
        } else if quiet_since.get_or_insert_with(Instant::now).elapsed()
            > Duration::from_millis(300)
        {
            break;
        }
    }
    for (task, &n) in deliveries.iter().enumerate().skip(1) {
        match n {
            1 => println!("task {task}: delivered to one worker"),
            n => println!("task {task}: delivered {n} times"),
        }
    }
    if deliveries[1..].iter().all(|&n| n == 1) {
        println!("{TASKS} tasks, {} workers, no task twice", workers.len());
    }
    Ok(())
}
