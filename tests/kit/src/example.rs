//! The examples as real processes: [`binary`] builds one (once per test process) and says
//! where it is, [`Example::start`] runs it on a free loopback port and waits for its
//! `listening on http://ADDR` line, [`Example::sigterm`] sends it a real SIGTERM, and
//! [`Example::wait`] waits, bounded, for it to exit. Dropping an [`Example`] kills the
//! process, also when the test panics, so no process outlives its test.
//!
//! Every server example prints `listening on http://ADDR` on stdout once it accepts
//! connections and logs on stderr; [`Example::log`] returns what it logged so far.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use kit::example::Example;
//!
//! let mut server = Example::start("tonic", &[("DRAIN_DELAY_MS", "200")]);
//! server.sigterm();
//! let status = server.wait(Duration::from_secs(10)).expect("it exited");
//! assert!(status.success(), "{}", server.log());
//! ```
//!
//! Building from a test: `cargo build` runs with the same `cargo` as the test run
//! (`env!("CARGO")`) and the same target directory (found from this test binary's own
//! path, `target/debug/deps/NAME-HASH`), so that a CI that has built the examples first
//! (`.ci/run` does) pays only cargo's freshness check here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long building one example may take, generous for a cold build on two cores.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// How long an example may take from its start to its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);

/// The path of the example binary `name` (`quickstart`, or any example of the `examples`
/// package), built first if need be, once per test process and name.
///
/// # Panics
///
/// If the build fails or takes longer than [`BUILD_TIMEOUT`], with cargo's output.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_owned())
        .or_default()
        .clone();
    slot.get_or_init(|| build(name)).clone()
}

fn build(name: &str) -> PathBuf {
    let profile_dir = profile_dir();
    let package = if name == "quickstart" {
        "quickstart"
    } else {
        "examples"
    };
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["build", "--quiet", "-p", package, "--example", name])
        // The `examples` package's only feature (metrics, for `observability`): the same
        // flags as `.ci/run`'s build of the examples, so that its artifacts are reused.
        .arg("--all-features")
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        command.arg("--release");
    }
    if let Some(target_dir) = profile_dir.parent() {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let mut child = command.spawn().expect("cargo runs");
    let output = drain_output(&mut child);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("cargo can be waited for") {
            break status;
        }
        if start.elapsed() > BUILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("building example {name} took over {BUILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = output.join().unwrap_or_default();
    assert!(
        status.success(),
        "building example {name} failed:\n{output}"
    );
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is not there after the build",
        path.display()
    );
    path
}

/// Both output pipes read to their end on threads, so that a chatty child never blocks.
fn drain_output(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = std::io::Read::read_to_string(stderr, &mut text);
        }
        if let Some(stdout) = stdout.as_mut() {
            let _ = std::io::Read::read_to_string(stdout, &mut text);
        }
        text
    })
}

/// `target/debug` (or `target/release`): this test binary is `target/debug/deps/NAME-HASH`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let deps = exe.parent().expect("the test binary is in deps/");
    deps.parent()
        .expect("deps/ is in the profile's directory")
        .to_path_buf()
}

/// The workspace's root: the kit is in `tests/kit/`, two folders below it.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the kit is inside the workspace")
}

// === impl Example ===

/// A running example process, killed when dropped.
pub struct Example {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    printed: Arc<Mutex<String>>,
    started: Instant,
}

impl Example {
    /// Runs example `name` with `ADDR=127.0.0.1:0`, `RUST_LOG=info` and `env` on top, and
    /// returns once it has printed `listening on http://ADDR`.
    ///
    /// # Panics
    ///
    /// If it exits or stays silent for [`START_TIMEOUT`] first, with what it logged.
    pub fn start(name: &str, env: &[(&str, &str)]) -> Example {
        Example::start_binary(&binary(name), &[], env)
    }

    /// [`Example::start`] for any binary that prints the same line (this test binary run
    /// again in a role, say), with `args`.
    pub fn start_binary(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Example {
        let mut command = Command::new(path);
        command
            .args(args)
            .env("ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the example runs");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let logging = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = logging.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let printed = Arc::new(Mutex::new(String::new()));
        let printing = printed.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                {
                    let mut printed = printing.lock().unwrap_or_else(|e| e.into_inner());
                    printed.push_str(&line);
                    printed.push('\n');
                }
                if let Some((_, addr)) = line.split_once("listening on http://") {
                    let _ = tx.send(addr.trim().parse::<SocketAddr>());
                }
            }
        });
        let started = Instant::now();
        let mut example = Example {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            printed,
            started,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(addr)) => example.addr = addr,
            Ok(Err(error)) => panic!("a `listening on` line without an address: {error}"),
            Err(_) => {
                let _ = example.child.kill();
                let _ = example.child.wait();
                panic!(
                    "{} never said where it listens:\n{}",
                    path.display(),
                    example.log()
                );
            }
        }
        example
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`...) with the shell's own `kill`.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("sh")
            .args([
                "-c",
                "kill -s \"$0\" \"$1\"",
                signal,
                &self.pid().to_string(),
            ])
            .status()
            .expect("sh runs");
        assert!(sent.success(), "kill -s {signal} failed");
    }

    /// Sends SIGTERM, as the kubelet does.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Waits at most `limit` for the process to exit; `None` if it is still running.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Everything it logged on stderr so far. The reading thread may lag the process by a
    /// line; after [`Example::wait`] returned an exit, give it [`Example::log_after_exit`].
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything it printed on stdout so far, its `listening on` line included.
    pub fn printed(&self) -> String {
        self.printed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What it logged, once it has exited and the pipe is read to its end (bounded).
    pub fn log_after_exit(&self) -> String {
        let start = Instant::now();
        let mut last = self.log();
        // The pipe closes with the process; the reading thread then has the last lines.
        while start.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.log();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
