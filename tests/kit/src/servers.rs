//! PostgreSQL, Redis, MariaDB and RabbitMQ servers owned by a test: each runs from a
//! temporary directory on a free loopback port, can be stopped and started again on the
//! same port and data, and is stopped and its directory removed when dropped, also when
//! the test panics.
//!
//! The binaries are looked up in `PATH`, `/usr/sbin`, `/usr/lib/postgresql/*/bin` and
//! `/usr/lib/rabbitmq/bin`; a test that needs them asks through `needs.rs`, so that
//! without them it is reported as ignored, or fails under CI.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to accept connections, generous for a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after being asked to.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

// === impl Postgres ===

/// Where the PostgreSQL server binaries are, and who runs them.
#[derive(Debug, Clone)]
pub struct PostgresBinaries {
    dir: PathBuf,
    /// The uid and gid to run as when the test runs as root, which PostgreSQL refuses.
    user: Option<(u32, u32)>,
}

impl PostgresBinaries {
    pub fn find() -> Result<Self, String> {
        let mut dirs = path_dirs();
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                Some((version, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        dirs.extend(versions.into_iter().map(|(_, dir)| dir));
        let dir = dirs
            .into_iter()
            .find(|d| d.join("postgres").is_file() && d.join("initdb").is_file())
            .ok_or(
                "no directory in PATH or /usr/lib/postgresql/*/bin holds `postgres` and `initdb`",
            )?;
        let user = if id(&["-u"])? == 0 {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find_map(|name| Some((id(&["-u", name]).ok()?, id(&["-g", name]).ok()?)))
                .ok_or("running as root and there is no `postgres` or `nobody` user")?;
            Some(user)
        } else {
            None
        };
        Ok(PostgresBinaries { dir, user })
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.dir.join(program));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }
}

/// A PostgreSQL server with trust authentication for the user `postgres`.
pub struct Postgres {
    bin: PostgresBinaries,
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    starts: usize,
}

impl Postgres {
    /// Creates a cluster in a new temporary directory and starts it.
    ///
    /// # Panics
    ///
    /// If the cluster cannot be created or the server does not start.
    pub fn start(bin: &PostgresBinaries) -> Postgres {
        let dir = TempDir::new("tower-health-postgres");
        if let Some((uid, gid)) = bin.user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the temporary directory to the postgres user");
        }
        let log = dir.path().join("initdb.log");
        let status = bin
            .command("initdb")
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("create initdb.log"))
            .stderr(File::create(dir.path().join("initdb.err")).expect("create initdb.err"))
            .status()
            .expect("run initdb");
        assert!(
            status.success(),
            "initdb failed ({status}):\n{}",
            read_lossy(&dir.path().join("initdb.err"))
        );
        let mut server = Postgres {
            bin: bin.clone(),
            dir,
            port: free_port(),
            child: None,
            starts: 0,
        };
        server.start_again();
        server
    }

    /// A `tokio-postgres` connection string.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=5",
            self.port
        )
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts
    /// connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "PostgreSQL is already running");
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("postgres-{}.log", self.starts));
        let child = self
            .bin
            .command("postgres")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create the PostgreSQL log"))
            .spawn()
            .expect("start postgres");
        let child = self.child.insert(child);
        // Accepting TCP is not enough: until recovery ends PostgreSQL refuses sessions.
        wait_until("PostgreSQL", child, &log, || {
            read_lossy(&log).contains("ready to accept connections")
                && TcpStream::connect_timeout(&loopback(self.port), POLL).is_ok()
        });
    }

    /// Stops the server with a fast shutdown, which ends every open session, and waits
    /// for it to exit.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child, "INT");
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // Immediate shutdown: the data directory is removed next anyway.
            stop(child, "QUIT");
        }
    }
}

// === impl Redis ===

/// Where `redis-server` is.
#[derive(Debug, Clone)]
pub struct RedisBinary(PathBuf);

impl RedisBinary {
    pub fn find() -> Result<Self, String> {
        path_dirs()
            .into_iter()
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
            .map(RedisBinary)
            .ok_or_else(|| "no `redis-server` in PATH".to_owned())
    }
}

/// A Redis server that keeps nothing on disk.
pub struct Redis {
    bin: RedisBinary,
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    starts: usize,
}

impl Redis {
    /// Starts a server in a new temporary directory.
    ///
    /// # Panics
    ///
    /// If the server does not start.
    pub fn start(bin: &RedisBinary) -> Redis {
        let mut server = Redis {
            bin: bin.clone(),
            dir: TempDir::new("tower-health-redis"),
            port: free_port(),
            child: None,
            starts: 0,
        };
        server.start_again();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port, and waits until it answers `PING`.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Redis is already running");
        self.starts += 1;
        let log = self.dir.path().join(format!("redis-{}.log", self.starts));
        let child = Command::new(&self.bin.0)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("create the Redis log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let port = self.port;
        let child = self.child.insert(child);
        wait_until("Redis", child, &log, || redis_pong(port));
    }

    /// Stops the server at once and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child, "KILL");
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&loopback(port), POLL) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

// === impl MariaDb ===

/// Where the MariaDB server and its installer are.
#[derive(Debug, Clone)]
pub struct MariaDbBinaries {
    server: PathBuf,
    install_db: PathBuf,
    /// Running as root, the server must be told that it may.
    root: bool,
}

impl MariaDbBinaries {
    pub fn find() -> Result<Self, String> {
        let mut dirs = path_dirs();
        dirs.push(PathBuf::from("/usr/sbin"));
        let find = |names: &[&str]| {
            dirs.iter()
                .flat_map(|d| names.iter().map(move |n| d.join(n)))
                .find(|p| p.is_file())
        };
        let server = find(&["mariadbd", "mysqld"])
            .ok_or("no `mariadbd` or `mysqld` in PATH or /usr/sbin")?;
        let install_db = find(&["mariadb-install-db", "mysql_install_db"])
            .ok_or("no `mariadb-install-db` in PATH or /usr/sbin")?;
        Ok(MariaDbBinaries {
            server,
            install_db,
            root: id(&["-u"])? == 0,
        })
    }
}

/// A MariaDB server that lets anyone in (`--skip-grant-tables`), on loopback only.
pub struct MariaDb {
    bin: MariaDbBinaries,
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    starts: usize,
}

impl MariaDb {
    /// Creates a data directory in a new temporary directory and starts the server.
    ///
    /// # Panics
    ///
    /// If the data directory cannot be created or the server does not start.
    pub fn start(bin: &MariaDbBinaries) -> MariaDb {
        let dir = TempDir::new("tower-health-mariadb");
        let mut install = Command::new(&bin.install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--skip-test-db", "--auth-root-authentication-method=normal"]);
        if bin.root {
            install.arg("--user=root");
        }
        let err = dir.path().join("install.err");
        let status = install
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&err).expect("create install.err"))
            .status()
            .expect("run mariadb-install-db");
        assert!(
            status.success(),
            "mariadb-install-db failed ({status}):\n{}",
            read_lossy(&err)
        );
        let mut server = MariaDb {
            bin: bin.clone(),
            dir,
            port: free_port(),
            child: None,
            starts: 0,
        };
        server.start_again();
        server
    }

    /// An sqlx MySQL URL.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/mysql", self.port)
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts
    /// connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "MariaDB is already running");
        self.starts += 1;
        let dir = self.dir.path();
        let log = dir.join(format!("mariadb-{}.log", self.starts));
        let mut command = Command::new(&self.bin.server);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args([
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ]);
        if self.bin.root {
            command.arg("--user=root");
        }
        let child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let port = self.port;
        let child = self.child.insert(child);
        wait_until("MariaDB", child, &log, || {
            read_lossy(&log).contains("ready for connections")
                && TcpStream::connect_timeout(&loopback(port), POLL).is_ok()
        });
    }

    /// Stops the server with a normal shutdown and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child, "TERM");
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child, "KILL");
        }
    }
}

// === impl RabbitMq ===

/// Where the RabbitMQ server's start script is.
#[derive(Debug, Clone)]
pub struct RabbitMqBinary(PathBuf);

impl RabbitMqBinary {
    pub fn find() -> Result<Self, String> {
        // Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user; the script
        // it wraps runs as whoever starts it.
        let mut dirs = vec![PathBuf::from("/usr/lib/rabbitmq/bin")];
        dirs.extend(path_dirs());
        dirs.into_iter()
            .map(|d| d.join("rabbitmq-server"))
            .find(|p| p.is_file())
            .map(RabbitMqBinary)
            .ok_or_else(|| "no `rabbitmq-server` in /usr/lib/rabbitmq/bin or PATH".to_owned())
    }
}

/// A RabbitMQ node of its own (own name, data, logs and Erlang cookie in a temporary
/// directory), with the default `guest` user, which may connect from loopback.
pub struct RabbitMq {
    bin: RabbitMqBinary,
    dir: TempDir,
    port: u16,
    dist_port: u16,
    epmd_port: u16,
    child: Option<Child>,
    starts: usize,
}

impl RabbitMq {
    /// Starts a node in a new temporary directory.
    ///
    /// # Panics
    ///
    /// If the node does not start.
    pub fn start(bin: &RabbitMqBinary) -> RabbitMq {
        let mut server = RabbitMq {
            bin: bin.clone(),
            dir: TempDir::new("tower-health-rabbitmq"),
            port: free_port(),
            dist_port: free_port(),
            epmd_port: free_port(),
            child: None,
            starts: 0,
        };
        server.start_again();
        server
    }

    /// An AMQP URL for the default virtual host.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node (again) on the same port and data, and waits until it has started
    /// its listener.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "RabbitMQ is already running");
        self.starts += 1;
        let dir = self.dir.path();
        let log = dir.join(format!("rabbitmq-{}.log", self.starts));
        let child = Command::new(&self.bin.0)
            .env("HOME", dir)
            .env(
                "RABBITMQ_NODENAME",
                format!("tower-health-{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            // A port mapper of the node's own, stopped with it (see `Drop`), rather than
            // one on the shared default port that would outlive the test.
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
            .env("RABBITMQ_LOGS", "-")
            // The script runs the Erlang VM as a child: a group of their own lets a
            // signal reach both.
            .process_group(0)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("create the RabbitMQ log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start rabbitmq-server");
        let port = self.port;
        let child = self.child.insert(child);
        wait_until("RabbitMQ", child, &log, || {
            read_lossy(&log).contains("Server startup complete")
                && TcpStream::connect_timeout(&loopback(port), POLL).is_ok()
        });
    }

    /// Stops the node (SIGTERM to the script and the VM, a clean stop) and waits for it
    /// to exit.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child, "TERM");
        }
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child, "KILL");
        }
        // The Erlang VM started a port mapper daemon on the node's own port: stop it. It
        // refuses while the node it has just lost is still registered, so ask again.
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            let refused = Command::new("epmd")
                .args(["-port", &self.epmd_port.to_string(), "-kill"])
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|out| {
                    // Not refused: killed, or no epmd there to ask (a failed exit).
                    out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("Killed")
                });
            if !refused {
                break;
            }
            thread::sleep(POLL);
        }
    }
}

// === processes, ports and directories ===

/// Polls `ready` until it holds, failing with the server's log if the server exits or
/// does not become ready in time.
fn wait_until(what: &str, child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) during start-up:\n{}",
                read_lossy(log)
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not accept connections within {START_TIMEOUT:?}:\n{}",
                read_lossy(log)
            );
        }
        thread::sleep(POLL);
    }
}

/// Sends `signal` and waits for the process to exit, killing it if it takes too long.
fn stop(mut child: Child, signal: &str) {
    // The shell's own `kill`: a minimal system may have no kill(1).
    let sent = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$0\" \"$1\"",
            signal,
            &child.id().to_string(),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if sent {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(POLL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `signal` to the process group that `child` leads, waits for `child` to exit, and
/// then kills whatever of the group is left.
fn stop_group(child: Child, signal: &str) {
    let group = format!("-{}", child.id());
    let kill = |signal: &str| {
        let _ = Command::new("sh")
            .args(["-c", "kill -s \"$0\" -- \"$1\"", signal, &group])
            .stderr(Stdio::null())
            .status();
    };
    kill(signal);
    stop(child, signal);
    // The VM may outlive the script by a moment, or forever after a KILL of the script.
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline && group_alive(&group) {
        thread::sleep(POLL);
    }
    kill("KILL");
}

/// Whether any process of the group `-PGID` is alive.
fn group_alive(group: &str) -> bool {
    Command::new("sh")
        .args(["-c", "kill -0 -- \"$0\"", group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// Runs `id ARGS` and reads the number it prints.
fn id(args: &[&str]) -> Result<u32, String> {
    let output = Command::new("id")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `id`: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("`id {}` failed", args.join(" ")))
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// A directory removed with everything in it when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).expect("create a temporary directory");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
