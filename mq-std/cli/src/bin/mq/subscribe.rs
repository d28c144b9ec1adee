//! `mq sub`: prints the messages of a subscription, one per line, and acks each
//! once printed.

use std::io::{self, Write};

use clap::Args;
use std::future::Future;
use std::pin::Pin;

use mq_client::client::{Client, Message, QoS, SessionMode, Start, SubscribeOptions, Subscription};

use crate::daemon::Server;
use crate::fail::Fail;
use crate::output;
use crate::qos::parse_qos;

#[derive(Debug, Args)]
pub struct SubArgs {
    /// Join this group: its members share the messages.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Start at this per-topic sequence number (0: everything retained).
    #[arg(long, value_name = "SEQ", conflicts_with = "last")]
    from: Option<u64>,
    /// Start with the last N retained messages of each matching topic.
    #[arg(long, value_name = "N")]
    last: Option<u32>,
    /// Exit after this many messages (default: run until Ctrl-C).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Highest QoS wanted: 0 (at most once) or 1 (at least once).
    #[arg(long, default_value = "1", value_parser = parse_qos)]
    qos: QoS,
    /// Print each message as a JSON object.
    #[arg(long)]
    json: bool,
    /// Connect as this client id (default: a random one).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Keep the session, its subscription and what it has not acked while
    /// `mq sub` is not running: messages published meanwhile queue for it
    /// and come on the next `mq sub --client-id ID --persistent`.
    #[arg(long, requires = "client_id")]
    persistent: bool,
    /// Topic filter (`*` matches one token, `>` one or more trailing tokens).
    filter: String,
}

pub async fn run(server: &Server, args: SubArgs) -> Result<(), Fail> {
    let mut opts = match &args.group {
        Some(group) => SubscribeOptions::group(group.clone()),
        None => SubscribeOptions::default(),
    };
    opts.qos = args.qos;
    opts.start = match (args.from, args.last) {
        (Some(seq), _) => Start::Seq(seq),
        (None, Some(n)) => Start::Last(n),
        (None, None) => Start::New,
    };
    let mut client_opts = server.options();
    if let Some(id) = &args.client_id {
        client_opts.client_id = id.clone();
    }
    if args.persistent {
        client_opts.session = SessionMode::Resume;
    }
    let client = server.connect_with(client_opts).await?;
    let mut feed = Feed::subscribe(&client, &args.filter, &opts).await?;
    let mut stdout = io::stdout();
    let mut printed = 0u64;
    let result = loop {
        if args.count.is_some_and(|n| printed >= n) {
            break Ok(());
        }
        let msg = match feed.next().await {
            Ok(Some(msg)) => msg,
            Ok(None) => break Ok(()),
            Err(fail) => break Err(fail),
        };
        let line = if args.json {
            output::json(&msg)
        } else {
            format!("{} {} {}", msg.topic, msg.seq, output::escape(&msg.payload))
        };
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => {}
            // The reader went away (`mq sub ... | head`): the message stays
            // unacked, for redelivery.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(()),
            Err(e) => break Err(Fail(format!("cannot write to stdout: {e}"))),
        }
        printed += 1;
        if msg.ack().is_err() {
            break Err(Fail("the connection closed before the ack".to_string()));
        }
    };
    // Closing sends the acks still queued, then ends the subscription.
    client.close().await;
    drop(feed);
    result
}

/// A subscription's messages until Ctrl-C, for the commands that print or
/// answer them (`mq sub`, `mq reply`).
pub struct Feed {
    sub: Subscription,
    filter: String,
    ctrl_c: Pin<Box<dyn Future<Output = io::Result<()>> + Send>>,
}

impl Feed {
    /// Subscribes `client` to `filter`.
    pub async fn subscribe(
        client: &Client,
        filter: &str,
        opts: &SubscribeOptions,
    ) -> Result<Feed, Fail> {
        let sub = client
            .subscribe(filter, opts)
            .await
            .map_err(|e| Fail(format!("cannot subscribe to {filter}: {e}")))?;
        Ok(Feed {
            sub,
            filter: filter.to_string(),
            ctrl_c: Box::pin(tokio::signal::ctrl_c()),
        })
    }

    /// The next message; `None` after Ctrl-C; an error when mqd ended the
    /// session.
    pub async fn next(&mut self) -> Result<Option<Message>, Fail> {
        tokio::select! {
            msg = self.sub.next() => msg.map(Some).ok_or_else(|| Fail(format!(
                "the subscription to {} ended: mqd closed the session",
                self.filter
            ))),
            _ = &mut self.ctrl_c => Ok(None),
        }
    }
}
