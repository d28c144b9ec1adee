//! What the interop steps (`mqtt`, `nats`) share: running a scenario
//! program that prints `name<TAB>result` lines, and the table that compares
//! a reference server's results with mqd's.

use std::process::Command;

/// Results of a scenario program, as `(name, result)`.
pub type Results = Vec<(String, String)>;

/// Runs a scenario program; its `name<TAB>result` lines.
pub fn results(command: &mut Command, name: &str) -> Result<Results, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{name} failed ({}):\n{text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// What a comparison holds mqd to.
pub struct Expected<'a> {
    /// The reference server's name (`Mosquitto`, `nats-server`).
    pub peer: &'a str,
    /// Where mqd's result differs by design: `(scenario, mqd's result, why)`.
    pub differences: &'a [(&'a str, &'a str, &'a str)],
    /// What only mqd is checked for: `(scenario, its result)`.
    pub mqd_only: &'a [(&'a str, &'a str)],
}

/// The reference server's results (`theirs`) against mqd's (`ours`, with
/// `extra` results of mqd's own checks); prints a table titled `title` and
/// fails when a scenario differs other than as `expected` says.
pub fn compare(
    title: &str,
    expected: &Expected<'_>,
    theirs: &[(String, String)],
    ours: &[(String, String)],
    extra: &[(String, String)],
) -> Result<(), String> {
    let peer = expected.peer;
    let find = |name: &str| {
        ours.iter()
            .chain(extra)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (name, want) in theirs {
        let got = find(name).unwrap_or_else(|| "(missing)".into());
        let verdict = match expected.differences.iter().find(|(n, _, _)| n == name) {
            Some((_, ours, why)) if got == *ours => format!("differs by design: {why}"),
            Some(_) => "FAILED".into(),
            None if got == *want && !got.starts_with("FAILED") => "same".into(),
            None => "FAILED".into(),
        };
        if verdict == "FAILED" {
            failed.push(format!("{name}: {peer} `{want}`, mqd `{got}`"));
        }
        rows.push((name.clone(), want.clone(), got, verdict));
    }
    for (name, want) in expected.mqd_only {
        let got = find(name).unwrap_or_else(|| "(missing)".into());
        let verdict = if got == *want {
            "as expected"
        } else {
            "FAILED"
        };
        if verdict == "FAILED" {
            failed.push(format!("{name}: expected `{want}`, mqd `{got}`"));
        }
        rows.push((name.to_string(), "-".into(), got, verdict.into()));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\n{:width$}  result", "scenario");
    for (name, theirs, ours, verdict) in &rows {
        println!("{name:width$}  {verdict}: {peer} {theirs} | mqd {ours}");
    }
    let same = rows.iter().filter(|r| r.3 != "FAILED").count();
    println!("{title}: {same} passed, {} failed", failed.len());
    match failed.is_empty() {
        true => Ok(()),
        false => Err(failed.join("\n")),
    }
}
