//! The Wine prefix the Windows step runs its programs in, and Linux paths
//! as the programs see them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{MINGW_GCC, WINE};
use crate::cmd::{self, Step, run};
use crate::mq_tools::Runner;

/// The Wine prefix the step runs in: its own, under the target directory.
pub(super) struct Wine {
    prefix: PathBuf,
}

impl Wine {
    /// Creates the prefix if needed and puts the `bcryptprimitives.dll`
    /// stand-in into it when this Wine has none.
    pub(super) fn prepare() -> Result<Wine, String> {
        let step = Step::start("windows: the Wine prefix");
        let wine = Wine {
            prefix: cmd::target_dir().join("wine-prefix"),
        };
        let system32 = wine.prefix.join("drive_c/windows/system32");
        if !system32.is_dir() {
            println!("creating the Wine prefix {}", wine.prefix.display());
            run(wine.command().args(["wineboot", "--init"]))?;
        }
        let dll = system32.join("bcryptprimitives.dll");
        if !dll.is_file() {
            println!(
                "this Wine has no bcryptprimitives.dll, whose ProcessPrng Rust's std \
                 imports: building a stand-in from xtask/windows/bcryptprimitives.c"
            );
            let source = cmd::workspace_root().join("xtask/windows/bcryptprimitives.c");
            run(Command::new(MINGW_GCC)
                .args(["-shared", "-O2", "-o"])
                .arg(&dll)
                .arg(&source)
                .arg("-lbcrypt"))?;
        }
        // One wineserver for the whole step (ended by `shut_down`). Left to
        // itself it exits a moment after the last Windows process; a program
        // started in that moment (mqd.exe restarted right after it stopped)
        // fails with `wine client error:0: recvmsg: Connection reset by peer`.
        // `-p` refuses while another server runs (the one `wineboot` just
        // used, on a new prefix): wait for that one to end first.
        run(Command::new("wineserver").arg("-w").envs(wine.env()))?;
        run(Command::new("wineserver").arg("-p").envs(wine.env()))?;
        println!("    {}", cmd::format_duration(step.elapsed()));
        Ok(wine)
    }

    pub(super) fn env(&self) -> Vec<(String, String)> {
        vec![
            ("WINEPREFIX".into(), self.prefix.display().to_string()),
            // Wine's own diagnostics (fixme:, err:) drown the programs' output.
            ("WINEDEBUG".into(), "-all".into()),
            // No prompt to install Mono or Gecko into a new prefix.
            ("WINEDLLOVERRIDES".into(), "mscoree,mshtml=".into()),
        ]
    }

    /// `wine` in this prefix.
    pub(super) fn command(&self) -> Command {
        let mut command = Command::new(WINE);
        command.envs(self.env());
        command
    }

    /// `wine PROGRAM`, for mq_tools and mq-testkit.
    pub(super) fn runner(&self) -> Runner {
        Runner {
            program: PathBuf::from(WINE),
            env: self.env(),
        }
    }

    /// Ends whatever still runs in the prefix (an `mqd.exe` a failed test left).
    pub(super) fn shut_down(&self) {
        let _ = Command::new("wineserver")
            .arg("-k")
            .envs(self.env())
            .status();
    }
}

/// `Z:\...`: a Linux path as Windows programs under Wine see it (Wine maps
/// `Z:` to `/`).
pub(super) fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_paths_as_wine_sees_them() {
        assert_eq!(
            windows_path(Path::new("/work/t/a.exe")),
            "Z:\\work\\t\\a.exe"
        );
    }
}
