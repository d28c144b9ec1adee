//! `mq req` sends a request and prints its reply; `mq reply` answers the
//! requests of a subscription: with a fixed payload, the request's own
//! (`--echo`), or what a shell command prints with the request on its stdin
//! (`--command`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use mq_client::client::SubscribeOptions;

use crate::daemon::Server;
use crate::fail::Fail;
use crate::output::{self, outln};
use crate::subscribe::Feed;

#[derive(Debug, Args)]
pub struct ReqArgs {
    /// The topic a responder serves.
    topic: String,
    /// The request's payload.
    #[arg(default_value = "")]
    payload: String,
    /// How long to wait for the reply, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5")]
    timeout: f64,
    /// Print the reply as a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReplyArgs {
    /// The requests to serve (a topic filter).
    filter: String,
    /// The reply's payload.
    #[arg(default_value = "", conflicts_with_all = ["echo", "command"])]
    payload: String,
    /// Reply with the request's own payload.
    #[arg(long, conflicts_with = "command")]
    echo: bool,
    /// Reply with what this shell command prints, given the request's payload
    /// on its stdin (`sh -c` on Unix, `cmd /C` on Windows).
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// Share the requests with the other responders of this group.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Exit after answering this many requests (default: until Ctrl-C).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
}

pub async fn request(server: &Server, args: ReqArgs) -> Result<(), Fail> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            Fail(format!(
                "--timeout {} is not a positive number",
                args.timeout
            ))
        })?;
    let client = server.connect().await?;
    let reply = client
        .request(&args.topic, args.payload.into_bytes(), timeout)
        .await;
    client.close().await;
    let reply = reply.map_err(|e| Fail(format!("no reply on {}: {e}", args.topic)))?;
    if args.json {
        outln!("{}", output::json(&reply))?;
    } else {
        outln!("{}", output::escape(&reply.payload))?;
    }
    Ok(())
}

pub async fn reply(server: &Server, args: ReplyArgs) -> Result<(), Fail> {
    let opts = match &args.group {
        Some(group) => SubscribeOptions::group(group.clone()),
        None => SubscribeOptions::default(),
    };
    let client = server.connect().await?;
    let mut feed = Feed::subscribe(&client, &args.filter, &opts).await?;
    eprintln!("mq: answering requests on {}", args.filter);
    let mut answered = 0u64;
    let result = loop {
        if args.count.is_some_and(|n| answered >= n) {
            break Ok(());
        }
        let msg = match feed.next().await {
            Ok(Some(msg)) => msg,
            Ok(None) => break Ok(()),
            Err(fail) => break Err(fail),
        };
        if let Err(fail) = outln!("{} {} {}", msg.topic, msg.seq, output::escape(&msg.payload)) {
            break Err(fail);
        }
        if msg.reply_to.is_none() {
            eprintln!(
                "mq: {} {} has no reply-to: not a request",
                msg.topic, msg.seq
            );
            let _ = msg.ack();
            continue;
        }
        let payload = match (&args.command, args.echo) {
            (Some(cmd), _) => match run_command(cmd, &msg.payload) {
                Ok(out) => out,
                Err(fail) => break Err(fail),
            },
            (None, true) => msg.payload.clone(),
            (None, false) => Bytes::from(args.payload.clone()),
        };
        if let Err(e) = client.reply(&msg, payload).await {
            break Err(Fail(format!("cannot reply to {}: {e}", msg.topic)));
        }
        let _ = msg.ack();
        answered += 1;
    };
    client.close().await;
    drop(feed);
    result
}

/// Runs `cmd` in the platform's shell with `input` on its stdin; its stdout.
fn run_command(cmd: &str, input: &[u8]) -> Result<Bytes, Fail> {
    #[cfg(unix)]
    let mut command = {
        let mut c = Command::new("sh");
        c.arg("-c").arg(cmd);
        c
    };
    #[cfg(windows)]
    let mut command = {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(cmd);
        c
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Fail(format!("cannot run {cmd:?}: {e}")))?;
    let stdin = child.stdin.take();
    // Written from a thread of its own: a command may print before it has
    // read everything, and neither pipe may fill while the other waits.
    let out = std::thread::scope(|s| {
        if let Some(mut stdin) = stdin {
            // A command that does not read its input is fine.
            s.spawn(move || stdin.write_all(input));
        }
        child.wait_with_output()
    })
    .map_err(|e| Fail(format!("cannot run {cmd:?}: {e}")))?;
    Ok(Bytes::from(out.stdout))
}
