//! Readiness that never empties the fleet, the rule on a paused clock: replicas are
//! `Health`s in this process, each asking the others through a client that calls their
//! layers directly, so that the test decides which peer answers, late or never.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use kit::needs;
use libtest_mimic::Trial;
use tower::{Layer, ServiceExt};
use tower_health::{
    BuildProblem, Check, Fleet, Health, HealthService, Probe, Reasons, Status, Switch,
};

/// The trials on a paused clock, each a test of the target.
pub fn trials() -> Vec<Trial> {
    macro_rules! trials {
        ($($test:ident),* $(,)?) => {
            vec![$(needs::always(stringify!($test), || paused_runtime().block_on($test())),)*]
        };
    }
    trials![
        a_failure_every_replica_shares_holds_readiness_with_a_reason_that_says_so,
        a_failure_only_this_replica_has_fails_readiness,
        peers_that_answer_after_the_timeout_do_not_confirm,
        a_late_answer_inside_the_timeout_still_confirms,
        a_replica_cut_off_from_its_peers_fails_readiness,
        peers_that_disagree_decide_by_strict_majority,
        a_fleet_of_one_holds_and_a_fleet_of_two_needs_both,
        a_fleet_of_a_hundred_asks_a_sample_of_ten,
        peers_are_asked_only_while_a_shared_check_fails_and_at_most_once_per_cache_time,
        a_check_not_marked_shared_never_asks_and_fails_as_today,
        without_a_fleet_a_shared_check_fails_readiness_as_today,
        a_peer_is_told_the_check_own_result_never_the_held_verdict_nor_the_reason,
        a_peer_whose_pass_predates_the_failure_runs_its_check_before_answering,
        recovery_ends_the_hold_and_a_local_failure_after_it_fails_again,
        damping_asks_the_fleet_only_once_the_failure_would_show,
        a_shared_check_that_does_not_gate_readiness_is_refused,
        recheck_runs_a_check_at_once_and_a_storm_of_them_runs_it_rarely,
        a_shared_switch_shows_its_pass_with_no_refresh,
        an_outage_that_ended_is_not_judged_by_the_last_one_verdict,
    ]
}

/// A current-thread runtime whose clock starts paused, as `#[tokio::test(start_paused =
/// true)]` builds it.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a Tokio runtime")
}

type Inner =
    tower::util::BoxCloneService<Request<Empty<Bytes>>, Response<Empty<Bytes>>, Infallible>;
type App = HealthService<Inner>;

/// How a peer behaves when asked.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Peer {
    /// Answers at once.
    Answers,
    /// Answers after this long.
    Late(Duration),
    /// Never answers.
    Gone,
    /// The connection is refused.
    Refused,
}

/// The replicas of one test, by the port they pretend to listen on, how each behaves, and
/// how many questions each was asked.
#[derive(Clone, Default)]
struct Net {
    apps: Arc<Mutex<HashMap<u16, App>>>,
    behaviour: Arc<Mutex<HashMap<u16, Peer>>>,
    asked: Arc<AtomicUsize>,
}

impl Net {
    fn set(&self, port: u16, peer: Peer) {
        self.behaviour.lock().unwrap().insert(port, peer);
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    /// A fleet that reaches the replicas at `ports` through this net.
    fn fleet(&self, ports: impl IntoIterator<Item = u16>) -> Fleet {
        let addrs: Vec<SocketAddr> = ports
            .into_iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let net = self.clone();
        let client = tower::service_fn(move |req: Request<Empty<Bytes>>| {
            let net = net.clone();
            async move {
                net.asked.fetch_add(1, Ordering::SeqCst);
                let port = req.uri().port_u16().expect("the fleet asks host:port");
                let behaviour = net.behaviour.lock().unwrap().get(&port).copied();
                match behaviour.unwrap_or(Peer::Answers) {
                    Peer::Answers => {}
                    Peer::Late(after) => tokio::time::sleep(after).await,
                    Peer::Gone => std::future::pending::<()>().await,
                    Peer::Refused => {
                        return Err::<Response<_>, _>(std::io::Error::from(
                            std::io::ErrorKind::ConnectionRefused,
                        ))
                    }
                }
                let app = net.apps.lock().unwrap().get(&port).cloned();
                let app = app.expect("a replica on every port the fleet lists");
                Ok(app.oneshot(req).await.unwrap())
            }
        });
        Fleet::addrs(addrs).client(client)
    }

    /// Serves `health` on `port` of this net.
    fn serve(&self, port: u16, health: &Health) -> App {
        let inner = tower::service_fn(|_: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Empty::new()))
        });
        let app = health.layer().layer(Inner::new(inner));
        self.apps.lock().unwrap().insert(port, app.clone());
        app
    }
}

/// `n` replicas on ports 1 to `n`, each with a shared switch `db` that the test sets, and
/// a fleet that lists all of them (each replica itself too, as a headless Service does).
fn replicas(net: &Net, n: u16, sample: usize) -> Vec<(Health, Switch)> {
    (1..=n)
        .map(|port| {
            let db = Switch::new("db").shared();
            let health = Health::builder()
                .switch(&db)
                .fleet(net.fleet(1..=n).sample(sample))
                .reasons(Reasons::always())
                .background_refresh(false)
                // The fleet's verdict is reused for a cache time: long here, so that the
                // tests say when it is asked again (by sleeping past it).
                .every(CACHE)
                .build();
            health.ready();
            net.serve(port, &health);
            (health, db)
        })
        .collect()
}

const CACHE: Duration = Duration::from_secs(10);

/// Past the cache time: the fleet is asked again.
async fn later() {
    tokio::time::sleep(CACHE + Duration::from_secs(1)).await;
}

/// What `health` says of `db` and of readiness after a run and the fleet's answers (the
/// shown status moves only once the fleet has answered, which may take longer than a
/// refresh waits: its timeout is the check's plus 250 ms).
async fn seen(health: &Health) -> (Status, Status, String) {
    health.refresh().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let report = health.report();
    let db = report.check("db").expect("the db entry");
    (
        db.status(),
        report.status(Probe::Readiness),
        db.output().unwrap_or("").to_owned(),
    )
}

async fn a_failure_every_replica_shares_holds_readiness_with_a_reason_that_says_so() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    for (_, db) in &fleet {
        db.fail("connection refused");
    }
    for (health, _) in &fleet {
        let (db, readiness, reason) = seen(health).await;
        assert_eq!(db, Status::Warn);
        assert_eq!(readiness, Status::Warn, "readiness passes (200) with warn");
        assert_eq!(
            reason,
            "failing on 3 of 3 replicas: readiness held; here: connection refused"
        );
    }
}

async fn a_failure_only_this_replica_has_fails_readiness() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    fleet[0].1.fail("password authentication failed");
    let (db, readiness, reason) = seen(&fleet[0].0).await;
    assert_eq!((db, readiness), (Status::Fail, Status::Fail));
    assert!(
        reason.starts_with("failing on 1 of 3 replicas: not shared"),
        "{reason}"
    );
    for (health, _) in &fleet[1..] {
        assert_eq!(seen(health).await.1, Status::Pass);
    }
}

async fn peers_that_answer_after_the_timeout_do_not_confirm() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    for (_, db) in &fleet {
        db.fail("timed out");
    }
    // The two peers answer, but only after the fleet's timeout (the budget, 900 ms, plus
    // 250 ms): this replica is on its own.
    net.set(2, Peer::Late(Duration::from_secs(5)));
    net.set(3, Peer::Late(Duration::from_secs(5)));
    let (db, readiness, _) = seen(&fleet[0].0).await;
    assert_eq!((db, readiness), (Status::Fail, Status::Fail));
}

async fn a_late_answer_inside_the_timeout_still_confirms() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    for (_, db) in &fleet {
        db.fail("timed out");
    }
    // The fleet's timeout is the check's (the budget, 900 ms) plus 250 ms.
    net.set(2, Peer::Late(Duration::from_millis(1000)));
    let (db, readiness, _) = seen(&fleet[0].0).await;
    assert_eq!((db, readiness), (Status::Warn, Status::Warn));
}

async fn a_replica_cut_off_from_its_peers_fails_readiness() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    for (_, db) in &fleet {
        db.fail("no route to host");
    }
    net.set(2, Peer::Gone);
    net.set(3, Peer::Refused);
    let (db, readiness, reason) = seen(&fleet[0].0).await;
    assert_eq!((db, readiness), (Status::Fail, Status::Fail));
    assert!(reason.starts_with("failing on 1 of 3 replicas"), "{reason}");
}

async fn peers_that_disagree_decide_by_strict_majority() {
    let net = Net::default();
    let fleet = replicas(&net, 4, 10);
    fleet[0].1.fail("down");
    fleet[1].1.fail("down");
    // 2 of 4 is no strict majority.
    assert_eq!(seen(&fleet[0].0).await.1, Status::Fail);
    fleet[2].1.fail("down");
    // 3 of 4 is. (The last verdict is kept for a cache time: let it pass.)
    later().await;
    assert_eq!(seen(&fleet[0].0).await.1, Status::Warn);
}

async fn a_fleet_of_one_holds_and_a_fleet_of_two_needs_both() {
    let net = Net::default();
    let one = replicas(&net, 1, 10);
    one[0].1.fail("down");
    assert_eq!(seen(&one[0].0).await.0, Status::Warn);

    let net = Net::default();
    let two = replicas(&net, 2, 10);
    two[0].1.fail("down");
    assert_eq!(seen(&two[0].0).await.0, Status::Fail);
    two[1].1.fail("down");
    later().await;
    assert_eq!(seen(&two[0].0).await.0, Status::Warn);
    assert_eq!(seen(&two[1].0).await.0, Status::Warn);
}

async fn a_fleet_of_a_hundred_asks_a_sample_of_ten() {
    let net = Net::default();
    let fleet = replicas(&net, 100, 10);
    // Only this replica fails: every sample of ten says pass.
    fleet[0].1.fail("down");
    let before = net.asked();
    assert_eq!(seen(&fleet[0].0).await.0, Status::Fail);
    let asked = net.asked() - before;
    assert_eq!(asked, 10, "one consultation asks the sample, no more");

    // Everyone fails: any sample confirms.
    for (_, db) in &fleet {
        db.fail("down");
    }
    later().await;
    assert_eq!(seen(&fleet[0].0).await.0, Status::Warn);
}

async fn peers_are_asked_only_while_a_shared_check_fails_and_at_most_once_per_cache_time() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    for _ in 0..5 {
        seen(&fleet[0].0).await;
    }
    assert_eq!(net.asked(), 0, "a passing check asks nobody");

    fleet[0].1.fail("down");
    seen(&fleet[0].0).await;
    let once = net.asked();
    assert_eq!(once, 3, "every replica the fleet lists (itself too), once");
    // Runs within the cache time reuse the verdict.
    for _ in 0..5 {
        seen(&fleet[0].0).await;
    }
    assert_eq!(net.asked(), once);
    later().await;
    seen(&fleet[0].0).await;
    assert_eq!(net.asked(), once + 3);
}

async fn a_check_not_marked_shared_never_asks_and_fails_as_today() {
    let net = Net::default();
    let db = Switch::new("db");
    let health = Health::builder()
        .switch(&db)
        .fleet(net.fleet([1, 2]))
        .build();
    health.ready();
    db.fail("down");
    assert_eq!(health.report().status(Probe::Readiness), Status::Fail);
    assert_eq!(net.asked(), 0);
}

async fn without_a_fleet_a_shared_check_fails_readiness_as_today() {
    let check = Check::new("db", || async { Err::<(), _>("down") }).shared();
    let health = Health::builder().check(check).build();
    health.ready();
    let report = health.refresh().await;
    assert_eq!(report.check("db").unwrap().status(), Status::Fail);
    assert_eq!(report.check("db").unwrap().output(), Some("down"));
    assert_eq!(report.status(Probe::Readiness), Status::Fail);
}

async fn a_peer_is_told_the_check_own_result_never_the_held_verdict_nor_the_reason() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    for (_, db) in &fleet {
        db.fail("secret host name");
    }
    assert_eq!(seen(&fleet[1].0).await.0, Status::Warn);
    // Asked as a peer asks, replica 2 says its own run fails, and nothing more.
    let app = net.apps.lock().unwrap()[&2].clone();
    let req = Request::get("/readyz/db?fleet=60000")
        .body(Empty::new())
        .unwrap();
    let response = app.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "fail");
    assert!(body["replica"].is_string());
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
}

async fn a_peer_whose_pass_predates_the_failure_runs_its_check_before_answering() {
    // The onset: a peer's cached pass is older than this replica's failing run. The peer
    // runs its check first, so the replica that sees the outage first does not leave.
    let net = Net::default();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let healths: Vec<Health> = (1..=3u16)
        .map(|port| {
            let down = down.clone();
            let check = Check::new("db", move || {
                let down = down.load(Ordering::SeqCst);
                async move {
                    if down {
                        Err("connection refused")
                    } else {
                        Ok(())
                    }
                }
            })
            .shared()
            .every(Duration::from_secs(60));
            let health = Health::builder()
                .check(check)
                .fleet(net.fleet(1..=3))
                .background_refresh(false)
                .build();
            health.ready();
            net.serve(port, &health);
            health
        })
        .collect();
    for health in &healths {
        assert_eq!(seen(health).await.0, Status::Pass);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    down.store(true, Ordering::SeqCst);
    // Peers 2 and 3 still hold a 5 s old pass, fresh for a minute.
    let (db, readiness, _) = seen(&healths[0]).await;
    assert_eq!((db, readiness), (Status::Warn, Status::Warn));
}

async fn recovery_ends_the_hold_and_a_local_failure_after_it_fails_again() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    let mut changes = fleet[0].0.changes();
    for (_, db) in &fleet {
        db.fail("down");
    }
    assert_eq!(seen(&fleet[0].0).await.0, Status::Warn);
    for (_, db) in &fleet {
        db.pass();
    }
    assert_eq!(
        seen(&fleet[0].0).await,
        (Status::Pass, Status::Pass, String::new())
    );
    // The change stream saw pass → warn → pass.
    let mut seen_statuses = Vec::new();
    while let Ok(Some(change)) =
        tokio::time::timeout(Duration::from_millis(10), changes.next()).await
    {
        if let tower_health::Change::Check(change) = change {
            seen_statuses.push((change.from(), change.to()));
        }
    }
    assert_eq!(
        seen_statuses,
        [(Status::Pass, Status::Warn), (Status::Warn, Status::Pass)]
    );
    later().await;
    fleet[0].1.fail("down");
    assert_eq!(seen(&fleet[0].0).await.0, Status::Fail);
}

async fn damping_asks_the_fleet_only_once_the_failure_would_show() {
    let net = Net::default();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = down.clone();
    let check = Check::new("db", move || {
        let down = flag.load(Ordering::SeqCst);
        async move {
            if down {
                Err("down")
            } else {
                Ok(())
            }
        }
    })
    .shared()
    .fail_after(3);
    let health = Health::builder()
        .check(check)
        .fleet(net.fleet([2, 3]))
        .background_refresh(false)
        .build();
    health.ready();
    net.set(2, Peer::Gone);
    net.set(3, Peer::Gone);
    assert_eq!(seen(&health).await.0, Status::Pass);
    down.store(true, Ordering::SeqCst);
    assert_eq!(seen(&health).await.0, Status::Pass); // 1 failure
    assert_eq!(seen(&health).await.0, Status::Pass); // 2
    assert_eq!(net.asked(), 0);
    assert_eq!(seen(&health).await.0, Status::Fail); // 3: asked, nobody confirms
    assert_eq!(net.asked(), 2);
}

async fn a_shared_check_that_does_not_gate_readiness_is_refused() {
    let check = Check::new("db", || async { Ok::<(), std::io::Error>(()) })
        .shared()
        .probes([Probe::Liveness]);
    let error = Health::builder().check(check).try_build().unwrap_err();
    assert!(matches!(
        error.problems(),
        [BuildProblem::SharedWithoutReadiness { name }] if name == "db"
    ));
}

async fn recheck_runs_a_check_at_once_and_a_storm_of_them_runs_it_rarely() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let check = Check::new("db", move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<(), std::io::Error>(()) }
    });
    let health = Health::builder()
        .check(check)
        .background_refresh(false)
        .build();
    health.refresh().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(health.recheck("db"));
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one run at once");
    for _ in 0..1000 {
        health.recheck("db");
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "none within 250 ms of the last"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..1000 {
        health.recheck("db");
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(!health.recheck("nothing"));
}

async fn a_shared_switch_shows_its_pass_with_no_refresh() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    fleet[0].1.fail("down");
    assert_eq!(seen(&fleet[0].0).await.0, Status::Fail);
    fleet[0].1.pass();
    // The set asks for a run; no refresh needed.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = fleet[0].0.report();
    assert_eq!(report.check("db").unwrap().status(), Status::Pass);
    assert_eq!(
        report.check("db").unwrap().kind(),
        tower_health::CheckKind::Switch
    );
}

async fn an_outage_that_ended_is_not_judged_by_the_last_one_verdict() {
    let net = Net::default();
    let fleet = replicas(&net, 3, 10);
    // A local failure, over within the cache time...
    fleet[0].1.fail("down");
    assert_eq!(seen(&fleet[0].0).await.0, Status::Fail);
    fleet[0].1.pass();
    assert_eq!(seen(&fleet[0].0).await.0, Status::Pass);
    // ...then the database goes down for everyone: asked afresh, held.
    for (_, db) in &fleet {
        db.fail("down");
    }
    assert_eq!(seen(&fleet[0].0).await.0, Status::Warn);
}
