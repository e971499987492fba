//! Readiness that never empties the fleet, end to end: three replicas serving on loopback,
//! each reaching a real PostgreSQL through a TCP forwarder of its own that the test cuts
//! (its node, its network), and asking each other over HTTP with the built-in client.
//!
//! - one replica loses the database: only it fails readiness;
//! - every replica loses it: every replica stays ready, with the shared reason, and the
//!   route that needs no database still answers;
//! - the database is back: every replica passes;
//! - a replica cut off from the database and from its peers fails readiness;
//! - a "new release" with a wrong database password beside two good replicas fails
//!   readiness.
//!
//! Waits are bounded (each condition within 30 s, polled every 100 ms); no step assumes a
//! fast machine. See `kit::needs`.

use kit::manifests;
use kit::needs;
use kit::servers;
use libtest_mimic::Trial;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_health::{Check, Fleet, Health, Reasons};

/// The trials against PostgreSQL and the manifest, each a test of the target.
pub fn trials() -> Vec<Trial> {
    vec![
        needs::always(
            "the_fleet_manifest_finds_every_replica_ready_or_not_on_the_probe_port",
            the_fleet_manifest_finds_every_replica,
        ),
        needs::needs(
            "a_shared_outage_keeps_every_replica_ready_and_a_local_one_takes_out_only_its_replica",
            "PostgreSQL",
            servers::PostgresBinaries::find,
            |bin| needs::runtime().block_on(fleet_against_postgres(bin)),
        ),
    ]
}

/// `examples/kubernetes/fleet-deployment.yaml`: `PEERS` names the headless Service, which
/// lists every replica, ready or not, on the port the probes are served on.
fn the_fleet_manifest_finds_every_replica() {
    let yaml = manifests::read("fleet-deployment.yaml");
    let value = |from: &str, key: &str| manifests::value(&yaml, from, key);
    let service = value("kind: Service", "name");
    assert_eq!(value("kind: Service", "clusterIP"), "None", "headless");
    assert_eq!(value("kind: Service", "publishNotReadyAddresses"), "true");
    let service_port = value("kind: Service", "port");
    let container_port = value("kind: Deployment", "containerPort");
    let probe_port = value("readinessProbe:", "port");
    assert_eq!(probe_port, "http");
    assert_eq!(value("kind: Service", "targetPort"), "http");
    let peers = value("name: PEERS", "value");
    let (host, port) = peers.rsplit_once(':').expect("PEERS is host:port");
    assert!(
        host.starts_with(&format!("{service}.")),
        "{peers} names {service}"
    );
    assert_eq!(port, service_port, "{peers}");
    assert_eq!(
        port, container_port,
        "the peers are asked on the probe port"
    );
    let _: tower_health::Fleet = peers.parse().expect("PEERS parses as the example reads it");
}

const BOUND: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

// === a forwarder the test cuts ===

/// A TCP forwarder to one address. Cut, it closes every connection it carries and every
/// new one at once, as a lost route or a dead node looks to the replica behind it.
struct Forwarder {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Forwarder {
    async fn start(to: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let watch = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mut cut = watch.subscribe();
                if *cut.borrow_and_update() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Forwarder { addr, cut }
    }

    fn cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

// === a replica ===

struct Replica {
    addr: SocketAddr,
    health: Health,
}

/// A replica whose `postgres` check connects to `database_url` and runs `SELECT 1`,
/// marked shared, asking `peers`; serving `/` (no database) and the probes on `listener`.
async fn replica(listener: TcpListener, database_url: String, peers: Vec<SocketAddr>) -> Replica {
    let addr = listener.local_addr().unwrap();
    let check = Check::new("postgres", move || {
        let url = database_url.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let connection = tokio::spawn(connection);
            let result = client.simple_query("SELECT 1").await.map(drop);
            drop(client);
            connection.abort();
            result
        }
    })
    .timeout(Duration::from_millis(500))
    .shared();
    let health = Health::builder()
        .check(check)
        .fleet(Fleet::addrs(peers).timeout(Duration::from_millis(800)))
        .reasons(Reasons::always())
        .build();
    health.ready();
    let app = Router::new()
        .route("/", get(|| async { "needs no database" }))
        .layer(health.layer());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Replica { addr, health }
}

/// What `GET path` on `addr` answers: the status code and the body.
async fn get_from(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{addr}{path}");
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri.parse().unwrap()))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Waits, at most [`BOUND`], until `GET /readyz?verbose` on `addr` answers `code`; the body.
async fn readiness_becomes(addr: SocketAddr, code: u16, what: &str) -> String {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        let answer = get_from(addr, "/readyz?verbose").await;
        if let Some((status, body)) = &answer {
            if *status == code {
                return body.clone();
            }
        }
        last = answer;
        tokio::time::sleep(POLL).await;
    }
    panic!("{what}: readiness of {addr} never answered {code} within {BOUND:?}; last {last:?}");
}

/// Asserts that readiness of `addr` keeps answering `code` for a while (ten looks).
async fn readiness_stays(addr: SocketAddr, code: u16, what: &str) {
    for _ in 0..10 {
        let answer = get_from(addr, "/readyz").await;
        assert_eq!(
            answer.as_ref().map(|a| a.0),
            Some(code),
            "{what}: {answer:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn fleet_against_postgres(bin: servers::PostgresBinaries) {
    let postgres = tokio::task::block_in_place(|| servers::Postgres::start(&bin));
    let url: tokio_postgres::Config = postgres.url().parse().unwrap();
    let port = url.get_ports()[0];
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let via = |forwarder: &Forwarder| {
        postgres.url().replace(
            &format!("port={port} "),
            &format!("port={} ", forwarder.addr.port()),
        )
    };

    let forwarders = [
        Forwarder::start(target).await,
        Forwarder::start(target).await,
        Forwarder::start(target).await,
    ];
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let mut replicas = Vec::new();
    for (listener, forwarder) in listeners.into_iter().zip(&forwarders) {
        replicas.push(replica(listener, via(forwarder), addrs.clone()).await);
    }
    for r in &replicas {
        readiness_becomes(r.addr, 200, "all up").await;
    }

    // One replica loses the database: it alone leaves.
    forwarders[0].cut(true);
    let body = readiness_becomes(replicas[0].addr, 503, "one cut").await;
    assert!(body.contains("postgres"), "{body}");
    for r in &replicas[1..] {
        readiness_stays(r.addr, 200, "the others while one is cut").await;
    }
    forwarders[0].cut(false);
    readiness_becomes(replicas[0].addr, 200, "one restored").await;

    // Every replica loses it: none leaves, each says why, and `/` still answers.
    for f in &forwarders {
        f.cut(true);
    }
    let deadline = tokio::time::Instant::now() + BOUND;
    for r in &replicas {
        loop {
            let report = r.health.report();
            let check = report.check("postgres").unwrap();
            // Held as soon as most replicas fail; "3 of 3" once the last peer's own
            // check has run again since the cut (each runs on its own clock).
            if check.status() == tower_health::Status::Warn {
                let reason = check.output().unwrap_or("");
                assert!(reason.contains("readiness held"), "{reason}");
                if reason.starts_with("failing on 3 of 3 replicas: readiness held") {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "every replica cut: {} never held readiness; last {:?}",
                r.addr,
                check
            );
            tokio::time::sleep(POLL).await;
        }
    }
    for r in &replicas {
        readiness_stays(r.addr, 200, "all cut").await;
        let answer = get_from(r.addr, "/").await;
        assert_eq!(
            answer.map(|a| a.0),
            Some(200),
            "the route that needs no database"
        );
        let body = get_from(r.addr, "/readyz?verbose").await.unwrap().1;
        assert!(body.contains("warn"), "{body}");
    }

    // A fourth replica cut off from the database and from its peers: nobody confirms.
    let peers_cut: Vec<Forwarder> = vec![
        Forwarder::start(addrs[0]).await,
        Forwarder::start(addrs[1]).await,
        Forwarder::start(addrs[2]).await,
    ];
    for f in &peers_cut {
        f.cut(true);
    }
    let isolated_db = Forwarder::start(target).await;
    isolated_db.cut(true);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let isolated = replica(
        listener,
        via(&isolated_db),
        peers_cut.iter().map(|f| f.addr).collect(),
    )
    .await;
    let body = readiness_becomes(isolated.addr, 503, "cut off from all").await;
    assert!(body.contains("postgres"), "{body}");

    // The database is back for the three: every one passes.
    for f in &forwarders {
        f.cut(false);
    }
    for r in &replicas {
        let deadline = tokio::time::Instant::now() + BOUND;
        while r.health.report().check("postgres").unwrap().status() != tower_health::Status::Pass {
            assert!(tokio::time::Instant::now() < deadline, "never passed again");
            tokio::time::sleep(POLL).await;
        }
        let body = readiness_becomes(r.addr, 200, "restored").await;
        assert!(!body.contains("warn"), "{body}");
    }

    // A new release with a wrong password beside the good replicas stays unready.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let new_addr = listener.local_addr().unwrap();
    let mut fleet = addrs.clone();
    fleet.push(new_addr);
    let wrong = via(&forwarders[0]).replace("dbname=postgres", "dbname=no_such_database");
    assert_ne!(wrong, via(&forwarders[0]));
    let broken = replica(listener, wrong, fleet).await;
    readiness_becomes(broken.addr, 503, "a broken release").await;
    readiness_stays(broken.addr, 503, "a broken release").await;
    for r in &replicas {
        readiness_stays(r.addr, 200, "the good ones beside a broken release").await;
    }

    drop(postgres);
}
