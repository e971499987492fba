//! Fuzzing the layer over real connections: random and mutated HTTP/1.1 requests as raw
//! bytes over TCP, HTTP/2 requests with odd methods, paths and headers from a real
//! HTTP/2 client, and mutated HTTP/2 byte streams, all sent over loopback to a hyper
//! server (HTTP/1.1 and HTTP/2) wearing the layer, with a few checks.
//!
//! What is checked: no panic anywhere in the process (a panic hook counts them), the
//! server task still running, every HTTP/1.1 answer a well-formed sequence of responses,
//! every HTTP/2 answer a well-formed sequence of frames, every response the HTTP/2 client
//! got readable to its end, and, after the run, the server still answering a normal probe
//! over HTTP/1.1 and HTTP/2.
//!
//! Everything is drawn from one seeded generator, so a run is repeatable from its seed
//! and count (the order in which connections are served may vary, the requests do not).
//! Used by `tests/fuzz.rs` (a fixed seed and count) and `examples/fuzz.rs` (any).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower::Layer;
use tower_health::{Check, Health, Probe};

/// The longest a single connection may take before it counts as hung.
const CONNECTION_LIMIT: Duration = Duration::from_secs(5);
/// How many connections are in flight at once.
const PARALLEL: usize = 16;

/// How many of each kind of case a run sends.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub seed: u64,
    pub http1: usize,
    pub http2: usize,
    pub http2_raw: usize,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub http1_cases: usize,
    /// HTTP/1.1 connections that got at least one response.
    pub http1_answered: usize,
    pub http2_cases: usize,
    /// HTTP/2 requests that got a response (the rest were refused by the client or
    /// reset by the server, which is a fine answer to a bad request).
    pub http2_answered: usize,
    pub http2_raw_cases: usize,
    /// How many responses had each status.
    pub statuses: std::collections::BTreeMap<u16, usize>,
    /// Anything that broke a check, with the case that did it.
    pub failures: Vec<String>,
}

impl Outcome {
    fn status(&mut self, status: u16) {
        *self.statuses.entry(status).or_default() += 1;
    }

    /// How many responses had a status in `range`.
    pub fn statuses_in(&self, range: std::ops::Range<u16>) -> usize {
        self.statuses.range(range).map(|(_, n)| n).sum()
    }
}

// === the generator ===

/// SplitMix64: small, fast, and the same everywhere for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A length that is usually small and now and then large.
    fn length(&mut self) -> usize {
        match self.below(10) {
            0 => self.below(70_000),
            1 => self.below(5_000),
            _ => self.below(40),
        }
    }
}

const PATHS: [&str; 34] = [
    "/livez",
    "/readyz",
    "/startupz",
    "/readyz/db",
    "/readyz/cache",
    "/startupz/model",
    "/readyz/model",
    "/livez/db",
    "/readyz/unknown",
    "/readyz/db/more",
    "/readyz/",
    "/readyzz",
    "//readyz",
    "/readyz?verbose",
    "/readyz?verbose=0",
    "/readyz?exclude=db&verbose",
    "/readyz?exclude=%zz&exclude=%&verbose=%ff",
    "/readyz?%%%%%%",
    "/livez?verbose&verbose&verbose",
    "/readyz#fragment",
    "/ready%7A",
    "/readyz%2Fdb",
    "/readyz/%2e%2e/livez",
    "/",
    "/orders",
    "/echo",
    "*",
    "",
    "http://localhost/readyz",
    "https://example.com:99999/livez",
    "http://[::1]/readyz?verbose",
    "/%",
    "/\u{e9}",
    "/readyz?\u{0}",
];

const METHODS: [&str; 16] = [
    "GET", "GET", "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE",
    "CONNECT", "BREW", "get", "M-SEARCH", "PRI",
];

const ACCEPTS: [&str; 12] = [
    "text/plain",
    "application/json",
    "application/health+json",
    "*/*",
    "text/*;q=0.5, application/*;q=0.5",
    "text/plain;q=0, */*;q=0",
    "text/plain;q=1.5",
    "text/plain;q=abc",
    "text/html",
    ";;;,,,",
    "text/plain; charset=utf-8, application/json; q=0.9",
    "q=0",
];

/// A probe-ish or odd path, sometimes with random bytes or made long.
fn path(rng: &mut Rng) -> Vec<u8> {
    let mut path = rng.pick(&PATHS).as_bytes().to_vec();
    match rng.below(8) {
        0 => {
            let n = rng.length();
            path.extend((0..n).map(|_| b"abc/%?&=.-_~"[rng.below(12)]));
        }
        1 => {
            let n = rng.below(20);
            let noise = rng.bytes(n);
            path.extend(noise);
        }
        _ => {}
    }
    path
}

/// A header line (without its CRLF): a known header with an odd value, or odd bytes.
fn header(rng: &mut Rng) -> Vec<u8> {
    let mut line = Vec::new();
    match rng.below(12) {
        0..=2 => {
            line.extend(b"Accept: ");
            line.extend(rng.pick(&ACCEPTS).as_bytes());
        }
        3 => {
            line.extend(b"Accept: ");
            let n = rng.length();
            line.extend((0..n).map(|_| b"text/plain;q=0.9, */*"[rng.below(21)]));
        }
        4 => {
            let _ = write!(
                LineWriter(&mut line),
                "Content-Length: {}",
                rng.pick(&["0", "5", "-1", "99999999999999999999", "1, 2", "abc", ""])
            );
        }
        5 => line.extend(b"Transfer-Encoding: chunked"),
        6 => line.extend(b"Connection: keep-alive, Upgrade"),
        7 => line.extend(b"Expect: 100-continue"),
        8 => {
            line.extend(b"X-Long: ");
            let n = rng.length();
            line.extend(std::iter::repeat_n(b'x', n));
        }
        9 => line.extend(b" folded continuation"),
        10 => {
            line.extend(b"Host: ");
            line.extend(
                rng.pick(&["localhost", "", "[::1]:80", "a b", "\u{e9}"])
                    .as_bytes(),
            );
        }
        _ => {
            let n = 1 + rng.below(30);
            let name = rng.bytes(n);
            line.extend(name);
            line.extend(b": ");
            let n = rng.below(30);
            let value = rng.bytes(n);
            line.extend(value);
        }
    }
    line
}

struct LineWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend(s.as_bytes());
        Ok(())
    }
}

/// One HTTP/1.1 request as bytes: half of them well formed with odd but valid parts
/// (methods, probe and near-probe paths, queries, `Accept` headers, long headers), the
/// other half odd throughout (versions, bytes in the path and the headers, bare LFs,
/// folded lines, bad lengths), and a third of those then damaged byte by byte,
/// truncated, or followed by a second request.
pub fn http1_request(rng: &mut Rng) -> Vec<u8> {
    let valid = rng.one_in(2);
    let mut out = Vec::new();
    let method = match valid && !rng.one_in(4) {
        true => rng.pick(&["GET", "HEAD"]),
        false => rng.pick(&METHODS),
    };
    out.extend(method.as_bytes());
    out.push(b' ');
    if valid {
        out.extend(rng.pick(&PATHS[..26]).as_bytes());
    } else {
        out.extend(path(rng));
    }
    out.push(b' ');
    let version = if valid {
        "HTTP/1.1"
    } else {
        rng.pick(&[
            "HTTP/1.1",
            "HTTP/1.1",
            "HTTP/1.0",
            "HTTP/2.0",
            "HTTP/9.9",
            "HTTP/1.1x",
            "",
        ])
    };
    out.extend(version.as_bytes());
    out.extend(b"\r\n");
    if valid || !rng.one_in(8) {
        out.extend(b"Host: localhost\r\n");
    }
    let headers = match rng.below(20) {
        0 if !valid => 150,
        _ => rng.below(6),
    };
    for _ in 0..headers {
        if valid {
            match rng.below(3) {
                0 => {
                    out.extend(b"X-Long: ");
                    let n = rng.below(8000);
                    out.extend(std::iter::repeat_n(b'y', n));
                }
                _ => {
                    out.extend(b"Accept: ");
                    out.extend(rng.pick(&ACCEPTS).as_bytes());
                }
            }
            out.extend(b"\r\n");
        } else {
            out.extend(header(rng));
            out.extend(if rng.one_in(10) { &b"\n"[..] } else { b"\r\n" });
        }
    }
    out.extend(b"\r\n");
    if valid {
        return out;
    }
    if rng.one_in(4) {
        let n = rng.length().min(2000);
        let body = rng.bytes(n);
        out.extend(body);
    }
    if rng.one_in(6) {
        // Pipelined: a second, plain request on the same connection.
        out.extend(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    }
    mutate(rng, &mut out, 0);
    out
}

/// Byte-level damage after `keep` bytes: flips, insertions, deletions, a repeated slice,
/// a truncation. Most requests come out untouched.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, keep: usize) {
    if rng.below(3) != 0 || bytes.len() <= keep {
        return;
    }
    for _ in 0..1 + rng.below(4) {
        if bytes.len() <= keep {
            break;
        }
        let at = keep + rng.below(bytes.len() - keep);
        match rng.below(5) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.insert(at, rng.next_u64() as u8),
            2 => {
                bytes.remove(at);
            }
            3 => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                let slice = bytes[at..end].to_vec();
                bytes.splice(at..at, slice);
            }
            _ => bytes.truncate(at),
        }
    }
}

// === the server ===

/// The server under test: hyper-util's HTTP/1.1 + HTTP/2 builder serving an axum router
/// wearing the layer, with checks that pass, fail, and gate startup.
pub struct Server {
    pub addr: SocketAddr,
    pub health: Health,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start() -> Server {
        let health = Health::builder()
            .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
            .check(Check::new("cache", || async { Err::<(), _>("down") }).non_critical())
            .check(
                Check::new("model", || async { Ok::<(), Infallible>(()) })
                    .probes([Probe::Startup, Probe::Readiness]),
            )
            .build();
        health.refresh().await;
        health.ready();
        let app = Router::new()
            .route("/", get(|| async { "hello" }))
            .route("/orders", get(|| async { "orders" }))
            .route("/echo", post(|body: Bytes| async move { body }));
        let service = health.layer().layer(app);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // Let a client that has sent its request shut down its side and still read
            // the answer.
            builder.http1().half_close(true);
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let connection = builder
                    .serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(service.clone()),
                    )
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        Server { addr, health, task }
    }

    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts panics anywhere in the process from the first call on (the previous hook still
/// prints them).
pub fn panics() -> &'static AtomicUsize {
    static PANICS: OnceLock<&'static AtomicUsize> = OnceLock::new();
    PANICS.get_or_init(|| {
        let count: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            count.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
        count
    })
}

// === the run ===

/// Sends the plan's cases to `server` and checks every answer; then checks that the
/// server answers a normal probe over HTTP/1.1 and HTTP/2.
pub async fn run(server: &Server, plan: Plan) -> Outcome {
    let mut rng = Rng::new(plan.seed);
    let mut outcome = Outcome::default();
    let addr = server.addr;

    // HTTP/1.1, raw bytes.
    let cases: Vec<Vec<u8>> = (0..plan.http1).map(|_| http1_request(&mut rng)).collect();
    for chunk in cases.chunks(PARALLEL) {
        let tasks: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|request| tokio::spawn(exchange(addr, request)))
            .collect();
        for (task, request) in tasks.into_iter().zip(chunk) {
            outcome.http1_cases += 1;
            let answer = task.await.expect("the exchange task");
            match answer.and_then(|bytes| parse_http1(&bytes)) {
                Ok(statuses) => {
                    if !statuses.is_empty() {
                        outcome.http1_answered += 1;
                    }
                    statuses.into_iter().for_each(|s| outcome.status(s));
                }
                Err(why) => outcome
                    .failures
                    .push(format!("HTTP/1.1: {why}; request {:?}", preview(request))),
            }
        }
    }

    // HTTP/2 from a real client, with odd methods, paths and headers.
    let requests: Vec<Request<Full<Bytes>>> = (0..plan.http2)
        .filter_map(|_| http2_request(&mut rng))
        .collect();
    outcome.http2_cases = requests.len();
    for chunk in requests.chunks(PARALLEL) {
        let mut tasks = Vec::new();
        for request in chunk {
            let request = clone_request(request);
            let what = format!("{} {}", request.method(), request.uri());
            tasks.push((what, tokio::spawn(http2_exchange(addr, request))));
        }
        for (what, task) in tasks {
            match task.await.expect("the HTTP/2 task") {
                Ok(Some(status)) => {
                    outcome.http2_answered += 1;
                    outcome.status(status);
                }
                Ok(None) => {}
                Err(why) => outcome.failures.push(format!("HTTP/2 {what}: {why}")),
            }
        }
    }

    // HTTP/2, a real client's bytes mutated.
    let streams = recorded_http2_streams().await;
    let cases: Vec<Vec<u8>> = (0..plan.http2_raw)
        .map(|_| {
            let mut bytes = rng.pick(&streams).clone();
            // Past the connection preface (24 bytes), which only opens the door.
            mutate_hard(&mut rng, &mut bytes, 24);
            bytes
        })
        .collect();
    for chunk in cases.chunks(PARALLEL) {
        let tasks: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|request| tokio::spawn(exchange(addr, request)))
            .collect();
        for (task, request) in tasks.into_iter().zip(chunk) {
            outcome.http2_raw_cases += 1;
            let answer = task.await.expect("the exchange task");
            if let Err(why) = answer.and_then(|bytes| parse_http2_frames(&bytes)) {
                outcome
                    .failures
                    .push(format!("HTTP/2 bytes: {why}; sent {:?}", preview(request)));
            }
        }
    }

    if let Err(why) = still_answers(addr).await {
        outcome.failures.push(why);
    }
    outcome
}

/// A request that must be served normally after the run, over both protocols.
async fn still_answers(addr: SocketAddr) -> Result<(), String> {
    let bytes = exchange(
        addr,
        b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await?;
    let text = String::from_utf8_lossy(&bytes);
    if !(text.starts_with("HTTP/1.1 200 ") && text.contains(r#"{"status":"warn""#)) {
        return Err(format!(
            "after the run, /readyz over HTTP/1.1 answered {text:?}"
        ));
    }
    let request = Request::get("/readyz").body(Full::default()).unwrap();
    match http2_exchange(addr, request).await {
        Ok(Some(200)) => Ok(()),
        other => Err(format!(
            "after the run, /readyz over HTTP/2 answered {other:?}"
        )),
    }
}

fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(300)];
    format!("{} ({} bytes)", String::from_utf8_lossy(shown), bytes.len())
}

/// Writes `request` on a new connection, shuts down the writing side, and reads until the
/// server closes.
async fn exchange(addr: SocketAddr, request: Vec<u8>) -> Result<Vec<u8>, String> {
    let talk = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The server may close early on a bad request: what it said is still read.
        let _ = stream.write_all(&request).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer).await {
            Ok(_) => Ok(answer),
            // A reset after the server refused the rest of the request.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(answer),
            Err(e) => Err(format!("read: {e}")),
        }
    };
    tokio::time::timeout(CONNECTION_LIMIT, talk)
        .await
        .map_err(|_| format!("no end to the connection after {CONNECTION_LIMIT:?}"))?
}

/// The statuses of the complete HTTP/1.x responses that `bytes` holds, one after the
/// other; an error if anything in it is not a complete, well-formed response.
pub fn parse_http1(mut bytes: &[u8]) -> Result<Vec<u16>, String> {
    let mut statuses = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return Err(format!("a response cut short: {:?}", preview(bytes)))
            }
            Err(e) => return Err(format!("not a response ({e}): {:?}", preview(bytes))),
        };
        let status = response.code.ok_or("no status")?;
        if !(100..=599).contains(&status) {
            return Err(format!("status {status}"));
        }
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let length = header("content-length");
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        bytes = &bytes[head..];
        statuses.push(status);
        if (100..200).contains(&status) || status == 204 || status == 304 {
            continue;
        }
        if chunked {
            bytes = skip_chunked(bytes)?;
        } else if let Some(length) = length {
            let length: usize = length
                .trim()
                .parse()
                .map_err(|_| format!("Content-Length {length:?}"))?;
            // A HEAD answer announces the length and sends nothing.
            if bytes.is_empty() || bytes.starts_with(b"HTTP/1.") {
                continue;
            }
            if bytes.len() < length {
                return Err(format!(
                    "a body cut short: {} of {length} bytes",
                    bytes.len()
                ));
            }
            bytes = &bytes[length..];
        } else {
            // Delimited by the end of the connection.
            bytes = &[];
        }
    }
    Ok(statuses)
}

fn skip_chunked(mut bytes: &[u8]) -> Result<&[u8], String> {
    loop {
        let line_end = find(bytes, b"\r\n").ok_or("a chunk size line cut short")?;
        let size_text = std::str::from_utf8(&bytes[..line_end]).map_err(|e| e.to_string())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("chunk size {size_text:?}"))?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            let end = find(bytes, b"\r\n").ok_or("chunked trailers cut short")?;
            if end == 0 {
                return Ok(&bytes[2..]);
            }
            let end = find(bytes, b"\r\n\r\n").ok_or("chunked trailers cut short")?;
            return Ok(&bytes[end + 4..]);
        }
        if bytes.len() < size + 2 || &bytes[size..size + 2] != b"\r\n" {
            return Err("a chunk cut short".into());
        }
        bytes = &bytes[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// HTTP/2 frames, one after the other: a 9-byte head (length, type, flags, stream) and
/// a payload no longer than the default largest frame; an error if one is cut short.
pub fn parse_http2_frames(mut bytes: &[u8]) -> Result<(), String> {
    while !bytes.is_empty() {
        if bytes.len() < 9 {
            return Err(format!("a frame head cut short: {bytes:?}"));
        }
        let length =
            (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2]);
        if length > 16_384 {
            return Err(format!("a frame of {length} bytes"));
        }
        if bytes[3] > 0x9 {
            return Err(format!("a frame of unknown type {}", bytes[3]));
        }
        if bytes.len() < 9 + length {
            return Err(format!(
                "a frame cut short: {} of {length} bytes",
                bytes.len() - 9
            ));
        }
        bytes = &bytes[9 + length..];
    }
    Ok(())
}

// === HTTP/2 ===

/// An HTTP/2 request with an odd method, path or headers, if `http` can build it.
fn http2_request(rng: &mut Rng) -> Option<Request<Full<Bytes>>> {
    let method = match rng.below(6) {
        0 => {
            let n = 1 + rng.length().min(200);
            let token: String = (0..n)
                .map(|_| *rng.pick(&['A', 'Z', '-', '!', '~', '_']))
                .collect();
            Method::from_bytes(token.as_bytes()).ok()?
        }
        _ => Method::from_bytes(rng.pick(&METHODS).as_bytes()).ok()?,
    };
    let path = path(rng);
    let uri = Uri::builder()
        .scheme("http")
        .authority("localhost")
        .path_and_query(path)
        .build()
        .ok()
        .unwrap_or_else(|| Uri::from_static("http://localhost/readyz"));
    let mut request = Request::builder().method(method).uri(uri);
    for _ in 0..rng.below(8) {
        let value = match rng.below(4) {
            0 => {
                let accept = *rng.pick(&ACCEPTS);
                HeaderValue::from_str(accept).ok()?
            }
            1 => HeaderValue::from_bytes(&vec![b'q'; rng.length()]).ok()?,
            2 => {
                let n = rng.below(30);
                HeaderValue::from_bytes(&rng.bytes(n)).unwrap_or(HeaderValue::from_static("x"))
            }
            _ => HeaderValue::from_static("text/plain;q=0.1"),
        };
        let name = match rng.below(3) {
            0 => http::header::ACCEPT,
            1 => HeaderName::from_bytes(format!("x-fuzz-{}", rng.below(1000)).as_bytes()).ok()?,
            _ => {
                let n = 1 + rng.below(20);
                let name: String = (0..n)
                    .map(|_| *rng.pick(&['a', 'z', '-', '0', '!', '^']))
                    .collect();
                HeaderName::from_bytes(name.as_bytes()).ok()?
            }
        };
        request = request.header(name, value);
    }
    let body = if rng.one_in(4) {
        let n = rng.length().min(5000);
        Bytes::from(rng.bytes(n))
    } else {
        Bytes::new()
    };
    request.body(Full::new(body)).ok()
}

fn clone_request(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut clone = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone())
        .body(request.body().clone())
        .expect("a request that was built once");
    *clone.headers_mut() = request.headers().clone();
    clone
}

/// Sends `request` over a new HTTP/2 connection; the status of the response, read to its
/// end, or `None` when the client or the server refused the request.
async fn http2_exchange(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<Option<u16>, String> {
    let talk = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        let connection = tokio::spawn(connection);
        let answer = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                check_http2_response(status)?;
                response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("the body of a {status} answer: {e}"))?;
                Some(status.as_u16())
            }
            Err(_) => None,
        };
        drop(sender);
        connection.abort();
        Ok(answer)
    };
    tokio::time::timeout(CONNECTION_LIMIT, talk)
        .await
        .map_err(|_| format!("no answer after {CONNECTION_LIMIT:?}"))?
}

fn check_http2_response(status: StatusCode) -> Result<(), String> {
    if status.is_informational() {
        return Err(format!("an informational final status {status}"));
    }
    Ok(())
}

/// What a real HTTP/2 client writes for a few requests (preface, settings, headers,
/// data), recorded over an in-memory pipe, to be mutated.
async fn recorded_http2_streams() -> Vec<Vec<u8>> {
    let mut streams = Vec::new();
    for (method, uri, accept, body) in [
        ("GET", "http://localhost/readyz?verbose", "text/plain", ""),
        ("HEAD", "http://localhost/livez", "*/*", ""),
        ("GET", "http://localhost/readyz/db", "application/json", ""),
        ("POST", "http://localhost/echo", "*/*", "some body"),
        (
            "DELETE",
            "http://localhost/startupz",
            "text/plain;q=0.5",
            "",
        ),
    ] {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .expect("handshake over a pipe");
        let connection = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::ACCEPT, accept)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request");
        let sent = tokio::spawn(sender.send_request(request));
        let mut recorded = Vec::new();
        let mut buffer = [0u8; 4096];
        // The client writes everything at once; stop once nothing more comes.
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), server.read(&mut buffer)).await
        {
            if n == 0 {
                break;
            }
            recorded.extend_from_slice(&buffer[..n]);
        }
        sent.abort();
        connection.abort();
        assert!(
            recorded.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            "an HTTP/2 preface"
        );
        streams.push(recorded);
    }
    streams
}

/// [`mutate`], always: an HTTP/2 stream that is not damaged tests little.
fn mutate_hard(rng: &mut Rng, bytes: &mut Vec<u8>, keep: usize) {
    let before = bytes.clone();
    while *bytes == before {
        mutate(rng, bytes, keep);
    }
}
