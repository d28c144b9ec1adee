//! The catalog step of `cargo xtask ci` (`cargo xtask catalog`): mq-catalog's
//! behaviour suite, and three `mqd` nodes linked through a catalog (mq-cli's
//! `mesh_nodes`), against SQLite and against the Redis (127.0.0.1:6379) and
//! PostgreSQL (127.0.0.1:5432) of this machine. Where one of them does not
//! answer, it is installed from Debian's packages and one is started for the
//! run on a free port (PostgreSQL: a cluster of its own with trust
//! authentication), with a message saying so; the tests then get its URL
//! (`MQ_CATALOG_REDIS_URL`, `MQ_CATALOG_POSTGRES_URL`). They never skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench::{self, REDIS, Servers};
use crate::cmd::{self, cargo, run};

/// Where the machine's own PostgreSQL listens.
const POSTGRES_ADDR: &str = "127.0.0.1:5432";

/// PostgreSQL's SSLRequest: any PostgreSQL answers it with `N` or `S`.
const SSL_REQUEST: &[u8] = &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// CI: the servers, then `cargo test -p mq-catalog` and the mesh of `mqd` nodes.
pub fn check() -> Result<(), String> {
    let mut servers = Servers::default();
    let redis = servers.ensure(&REDIS);
    if let Some(reason) = redis.strip_prefix("unavailable:") {
        return Err(format!("no Redis for the catalog tests: {reason}"));
    }
    // The failover test demotes a redis-server of its own to a replica.
    cmd::ensure_program("redis-server", "redis-server")
        .map_err(|e| format!("the catalog's failover test starts a redis-server: {e}"))?;
    // mq-catalog's behaviour suite, then three mqd nodes linked through each
    // catalog (mq-cli's `mesh_nodes`), both against the same servers, and the
    // desktop peers (`mq_std::peer`, a feature the workspace run leaves off).
    let mut env = Vec::new();
    if redis != "127.0.0.1:6379" {
        env.push(("MQ_CATALOG_REDIS_URL", format!("redis://{redis}/0")));
    }
    let cluster = if postgres_answers(POSTGRES_ADDR) {
        println!("catalog: PostgreSQL answers on {POSTGRES_ADDR}");
        None
    } else {
        println!(
            "catalog: PostgreSQL does not answer on {POSTGRES_ADDR}; installing Debian's \
             postgresql and starting a cluster for this run"
        );
        let cluster = Cluster::start()?;
        env.push(("MQ_CATALOG_POSTGRES_URL", cluster.url()));
        Some(cluster)
    };
    let mut result = Ok(());
    for args in [
        &["test", "-p", "mq-catalog"][..],
        &["test", "-p", "mq-cli", "--test", "mesh_nodes"],
        &[
            "test",
            "-p",
            "mq-std",
            "--features",
            "peer",
            "--test",
            "peers",
        ],
    ] {
        let mut test = cargo();
        test.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        result = run(&mut test);
        if result.is_err() {
            break;
        }
    }
    drop(cluster);
    drop(servers);
    result
}

fn postgres_answers(addr: &str) -> bool {
    bench::exchange(addr, SSL_REQUEST, b"N") || bench::exchange(addr, SSL_REQUEST, b"S")
}

/// A PostgreSQL cluster of this run: `initdb` into a temporary directory,
/// `pg_ctl start` on a free loopback port; stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        cmd::ensure_apt(&["postgresql"])?;
        let bin = postgres_bin()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("no free port: {err}"))?
            .port();
        let dir = std::env::temp_dir().join(format!("xtask-catalog-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let cluster = Cluster { bin, dir, port };
        if is_root() {
            // PostgreSQL refuses to run as root: its files belong to `postgres`.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cluster.dir))?;
        }
        let data = cluster.dir.join("data");
        run(cluster.tool("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ]))?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.dir.display()
        );
        run(cluster
            .tool("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("log"))
            .args(["-o", &options, "-w", "start"]))?;
        let addr = format!("127.0.0.1:{port}");
        if !postgres_answers(&addr) {
            let log = std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default();
            return Err(format!(
                "PostgreSQL started but does not answer on {addr}: {log}"
            ));
        }
        println!("catalog: started PostgreSQL on {addr}");
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// One of PostgreSQL's programs, run as `postgres` when we are root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = cmd::succeeds(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "stop"]),
        );
        let _ = std::fs::remove_dir_all(&self.dir);
        println!("catalog: stopped the PostgreSQL started for the run");
    }
}

/// Debian's `/usr/lib/postgresql/VERSION/bin`, the newest version installed.
fn postgres_bin() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|err| format!("{}: {err}", root.display()))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no initdb under {}/*/bin", root.display()))
}

fn is_root() -> bool {
    cmd::stdout_of(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}
