//! `mq topics`, `sessions`, `messages`, `purge`, `rm` (with and without an
//! admin token, as text and `--json`), `mq sub --client-id --persistent`,
//! and `mq req` / `mq reply`, against a real `mqd`.

mod support;

use serde_json::Value;
use support::*;

const TOKENS: &str = r#"
[[tokens]]
token = "ops"
publish = [">"]
subscribe = [">"]
admin = true

[[tokens]]
token = "app"
publish = [">"]
subscribe = [">"]
"#;

/// `mq --token TOKEN ARGS`.
fn as_token(mqd: &Mqd, token: &str, args: &[&str]) -> Run {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    mq(mqd, &all)
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"))
}

#[test]
fn topics_messages_purge_and_rm_from_the_shell() {
    let mqd = Mqd::start(TOKENS);
    as_token(
        &mqd,
        "app",
        &["pub", "shop.orders", "order", "--count", "5"],
    )
    .assert_ok();

    let run = as_token(&mqd, "ops", &["topics"]);
    let lines = run.assert_ok().lines();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>()[..3],
        ["TOPIC", "FIRST", "LAST"]
    );
    let row: Vec<_> = lines[1].split_whitespace().collect();
    assert_eq!(row[..4], ["shop.orders", "1", "5", "5"], "{run:?}");

    let topics = json(as_token(&mqd, "ops", &["topics", "--json"]).assert_ok());
    assert_eq!(topics["topics"][0]["name"], "shop.orders");
    assert_eq!(topics["topics"][0]["last_seq"], 5);

    let list = json(
        as_token(
            &mqd,
            "ops",
            &["messages", "shop.orders", "--from", "4", "--json"],
        )
        .assert_ok(),
    );
    assert_eq!(list["total"], 5);
    assert_eq!(list["messages"][0]["seq"], 4);
    assert_eq!(list["messages"][0]["payload"], "order");

    // Without the admin permission: a clear refusal, exit code 1.
    let run = as_token(&mqd, "app", &["purge", "shop.orders", "--before", "3"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("admin = true"), "{run:?}");
    // A bad argument: exit code 2.
    let run = as_token(&mqd, "ops", &["purge", "shop.orders", "--before", "soon"]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");

    let run = as_token(&mqd, "ops", &["purge", "shop.orders", "--before", "3"]);
    assert!(
        run.assert_ok().stdout.contains("purged 2 kept messages"),
        "{run:?}"
    );
    let run = as_token(
        &mqd,
        "ops",
        &["sub", "--from", "0", "--count", "1", "shop.orders"],
    );
    assert_eq!(run.assert_ok().lines(), ["shop.orders 3 order"]);

    let done = json(as_token(&mqd, "ops", &["rm", "shop.orders", "--json"]).assert_ok());
    assert_eq!(done["deleted"]["retained"], 3);
    let run = as_token(&mqd, "ops", &["rm", "shop.orders"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stderr.contains("no such topic: shop.orders"), "{run:?}");

    // The purge and the delete were logged: a restart keeps them (the
    // numbering starts again at 1, and continues past its reservation of
    // 2^20 numbers after the restart: none is given twice).
    as_token(&mqd, "app", &["pub", "shop.orders", "again"]).assert_ok();
    let mut mqd = mqd;
    mqd.restart();
    let topics = json(as_token(&mqd, "ops", &["topics", "--json"]).assert_ok());
    let t = &topics["topics"][0];
    assert_eq!(
        (t["first_seq"].as_u64(), t["last_seq"].as_u64()),
        (Some(1), Some(1 << 20)),
        "{topics}"
    );
}

#[test]
fn a_persistent_sub_is_an_offline_queue_seen_in_sessions() {
    let mqd = Mqd::start(TOKENS);
    let sub = [
        "sub",
        "--client-id",
        "shell-1",
        "--persistent",
        "--count",
        "1",
        "jobs",
    ];
    // The first run creates the session and its subscription.
    as_token(&mqd, "app", &["pub", "jobs", "before"]).assert_ok();
    let first = start(
        Some(&mqd),
        &[
            "--token",
            "app",
            "sub",
            "--client-id",
            "shell-1",
            "--persistent",
            "jobs",
        ],
        b"",
    );
    wait_for_subscriptions(&mqd, 1);
    drop(first);
    // Published while nobody runs `mq sub`: queued for shell-1.
    for i in 1..=3 {
        as_token(&mqd, "app", &["pub", "jobs", &format!("job {i}")]).assert_ok();
    }
    let sessions = json(as_token(&mqd, "ops", &["sessions", "--json"]).assert_ok());
    let s = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["client"] == "shell-1")
        .unwrap_or_else(|| panic!("{sessions}"));
    assert_eq!(s["persistent"], true);
    assert_eq!(s["subscriptions"][0]["filter"], "jobs");
    let run = as_token(&mqd, "ops", &["sessions"]);
    assert!(run.assert_ok().stdout.contains("shell-1"), "{run:?}");

    let run = as_token(&mqd, "app", &sub);
    assert_eq!(run.assert_ok().lines(), ["jobs 2 job 1"]);
    let run = as_token(
        &mqd,
        "app",
        &[
            "sub",
            "--client-id",
            "shell-1",
            "--persistent",
            "--count",
            "2",
            "jobs",
        ],
    );
    assert_eq!(run.assert_ok().lines(), ["jobs 3 job 2", "jobs 4 job 3"]);
    // --persistent alone is refused: an offline queue needs a name.
    let run = mq(&mqd, &["sub", "--persistent", "jobs"]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
}

#[test]
fn req_gets_the_reply_of_a_reply_from_the_shell() {
    let mqd = Mqd::start("");
    let echo = start(
        Some(&mqd),
        &["reply", "svc.echo", "--echo", "--count", "1"],
        b"",
    );
    let fixed = start(
        Some(&mqd),
        &["reply", "svc.time", "noon", "--count", "1"],
        b"",
    );
    wait_for_subscriptions(&mqd, 2);
    let run = mq(&mqd, &["req", "svc.echo", "hello there"]);
    assert_eq!(run.assert_ok().lines(), ["hello there"]);
    let run = mq(&mqd, &["req", "svc.time", "--json"]);
    assert_eq!(json(run.assert_ok())["payload"], "noon");
    let served = echo.wait();
    assert_eq!(served.assert_ok().lines(), ["svc.echo 1 hello there"]);
    fixed.wait().assert_ok();
    // Nobody answers: a clear failure within the timeout.
    let run = mq(&mqd, &["req", "svc.nobody", "x", "--timeout", "0.3"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("no reply on svc.nobody"), "{run:?}");
}

#[cfg(unix)]
#[test]
fn reply_runs_a_command_with_the_request_on_stdin() {
    let mqd = Mqd::start("");
    let upper = start(
        Some(&mqd),
        &[
            "reply",
            "svc.upper",
            "--command",
            "tr a-z A-Z",
            "--count",
            "1",
        ],
        b"",
    );
    wait_for_subscriptions(&mqd, 1);
    let run = mq(&mqd, &["req", "svc.upper", "shout"]);
    assert_eq!(run.assert_ok().lines(), ["SHOUT"]);
    upper.wait().assert_ok();
}
