//! Process helpers: run `cargo` (or any program) from the workspace root, echo the command line,
//! and turn a non-zero exit into a [`Failure`] that carries the child's exit status.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Why a command or step failed: a message for the user and the exit status to pass on.
#[derive(Debug)]
pub struct Failure {
    /// What failed, in words.
    pub message: String,
    /// The process exit status to end with (never 0).
    pub code: u8,
}

impl Failure {
    /// A failure with exit status 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    /// A usage error: exit status 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }
}

/// The result of a step or command.
pub type Outcome = Result<(), Failure>;

/// The cargo to run: `$CARGO` (set by `cargo run`, so the same toolchain) or `cargo` on PATH.
fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A command to run from a fixed directory, with extra environment variables.
pub struct Cmd {
    program: OsString,
    shown: String,
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
    dir: std::path::PathBuf,
}

impl Cmd {
    /// `program ARGS...` run in `dir`.
    pub fn new(program: impl Into<OsString>, dir: &Path) -> Self {
        let program = program.into();
        Self {
            shown: program.to_string_lossy().into_owned(),
            program,
            args: Vec::new(),
            envs: Vec::new(),
            dir: dir.to_path_buf(),
        }
    }

    /// `cargo ARGS...` run in `dir`.
    pub fn cargo(dir: &Path) -> Self {
        let mut cmd = Self::new(cargo_program(), dir);
        "cargo".clone_into(&mut cmd.shown);
        cmd
    }

    /// Appends arguments.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.envs.push((key, value.into()));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(&self.dir).args(&self.args);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// The command line as a shell would read it (environment first).
    fn display(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.envs {
            let _ = write!(s, "{k}={} ", quote(v));
        }
        s.push_str(&self.shown);
        for a in &self.args {
            let _ = write!(s, " {}", quote(a));
        }
        s
    }

    /// Runs the command, echoing it first; a non-zero exit becomes a [`Failure`] naming it.
    pub fn run(&self) -> Outcome {
        let line = self.display();
        eprintln!("    $ {line}");
        let status = self
            .command()
            .status()
            .map_err(|e| Failure::new(format!("could not start `{line}`: {e}")))?;
        if status.success() {
            return Ok(());
        }
        // Pass the child's exit status on; a signal or an out-of-range code becomes 1.
        let code = status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .filter(|&c| c != 0)
            .unwrap_or(1);
        Err(Failure {
            message: format!("`{line}` failed ({status})"),
            code,
        })
    }

    /// Runs the command silently and says whether it exited 0 (a probe, e.g. `--version`).
    pub fn probe(&self) -> bool {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// `value` appended to the space-separated flags already in environment variable `var`.
pub fn append_env_flags(var: &str, value: &str) -> String {
    match std::env::var(var) {
        Ok(existing) if !existing.trim().is_empty() => format!("{} {value}", existing.trim()),
        _ => value.to_owned(),
    }
}

/// Single-quotes `s` for display if it holds anything a shell would split or expand.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Makes sure a tool `present` says is installed, installing `packages` from the
/// distribution's packages (`apt-get`) when it is missing and this process runs as root;
/// `Err` says why it is not there (`what` names it in the messages).
pub fn ensure_packages(
    root: &Path,
    what: &str,
    packages: &[&str],
    present: impl Fn() -> bool,
) -> Result<(), String> {
    if present() {
        return Ok(());
    }
    let list = packages.join(" ");
    if !is_root() {
        return Err(format!(
            "{what} is not installed, and installing it needs root: `apt-get install {list}`"
        ));
    }
    eprintln!("    {what} is missing: apt-get install -y {list}");
    let _ = Cmd::new("apt-get", root).args(["update", "-q"]).run();
    let _ = Cmd::new("apt-get", root)
        .args(["install", "-y", "-q"])
        .args(packages.iter().copied())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run();
    if present() {
        Ok(())
    } else {
        Err(format!(
            "{what} could not be installed (`apt-get install {list}`)"
        ))
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::cargo(Path::new("."))
            .args(["test", "--test", "loom_swap"])
            .env("RUSTFLAGS", "--cfg loom");
        assert_eq!(
            cmd.display(),
            "RUSTFLAGS='--cfg loom' cargo test --test loom_swap"
        );
    }

    #[test]
    fn failure_passes_the_exit_status_on() {
        let err = Cmd::new("sh", Path::new("."))
            .args(["-c", "exit 3"])
            .run()
            .unwrap_err();
        assert_eq!(err.code, 3);
        assert!(Cmd::new("true", Path::new(".")).probe());
        assert!(!Cmd::new("false", Path::new(".")).probe());
    }
}
