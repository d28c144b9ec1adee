//! `cargo xtask console` (and a step of `cargo xtask ci`): mqd's web console
//! in a real browser. Headless Chromium (Debian's `chromium`, installed when
//! missing) loads the console from a running `mqd` while `mq pub` keeps
//! traffic flowing, and `xtask/console/check.py` drives it over the DevTools
//! protocol (the `websocket-client` package from PyPI, in a venv under the
//! target dir): topics with their sequence ranges and rates (a reader keeps
//! messages flowing out too), an away
//! session's queue, the rate plot, purge and delete locked without a token,
//! refused with a token that lacks the admin permission, done with one that
//! has it. The screenshot it takes is kept under the target dir, and its path
//! printed.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{self, run};
use crate::mq_tools;
use crate::python::venv_with;

/// Two tokens: `ops` may manage the broker, `app` may not; topics keep
/// enough that the traffic does not move their first sequence number.
const CONFIG: &str = r#"
[retention]
max_messages = 100000

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

pub fn check() -> Result<(), String> {
    if !cmd::on_path("chromium") {
        println!("the web console test runs headless Chromium: installing Debian's chromium");
    }
    cmd::ensure_program("chromium", "chromium")?;
    let python = venv_with(
        "console-venv",
        "websocket",
        "websocket-client>=1.6,<2",
        false,
    )?;
    let tools = mq_tools::tools()?;
    let mqd = mq_testkit::Mqd::builder(CONFIG)
        .binary(&tools.mqd)
        .try_start()?;
    let mq = |args: &[&str]| {
        let mut c = Command::new(&tools.mq);
        c.args(["--server", &mqd.addr.to_string(), "--token", "app"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    };
    run(&mut mq(&["pub", "shop.orders", "order", "--count", "30"]))?;
    run(&mut mq(&["pub", "sensors.kitchen", "21.5"]))?;
    away_session(&mqd, &mq)?;
    for i in 1..=3 {
        run(&mut mq(&["pub", "jobs", &format!("job {i}")]))?;
    }

    // A reader, so that messages flow out as well as in.
    let mut reader = mq(&["sub", "--qos", "0", "shop.orders"])
        .spawn()
        .map_err(|e| format!("cannot start mq sub: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        let mut publish = mq(&["pub", "shop.orders", "live", "--count", "5"]);
        publish.stderr(Stdio::null());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = publish.status();
                thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let dir = cmd::target_dir().join("console");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let screenshot = dir.join("console.png");
    let url = format!("http://{}/", mqd.http);
    println!("the console at {url} in headless Chromium");
    let result = run(Command::new(&python).arg(script()).args([
        "chromium",
        &url,
        &screenshot.display().to_string(),
    ]));
    stop.store(true, Ordering::SeqCst);
    let _ = traffic.join();
    let _ = reader.kill();
    let _ = reader.wait();
    result?;
    println!("console screenshot: {}", screenshot.display());
    Ok(())
}

fn script() -> PathBuf {
    cmd::workspace_root().join("xtask/console/check.py")
}

/// A persistent session `shell-1` subscribed to `jobs`, then away: what the
/// console shows as a session with a queue.
fn away_session(mqd: &mq_testkit::Mqd, mq: &dyn Fn(&[&str]) -> Command) -> Result<(), String> {
    let mut sub = mq(&["sub", "--client-id", "shell-1", "--persistent", "jobs"])
        .spawn()
        .map_err(|e| format!("cannot start mq sub: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while mqd.metric("mq_subscriptions") < 1 {
        if Instant::now() > deadline {
            let _ = sub.kill();
            return Err("mq sub --persistent did not subscribe within 15 s".into());
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = sub.kill();
    let _ = sub.wait();
    Ok(())
}
