//! The fleet: the other replicas of this service, asked whether a check marked
//! [shared](crate::Check::shared) fails for them too, so that an outage of a dependency
//! every replica shares never empties the Service.
//!
//! The rule lives in [`Tally::verdict`]; the engine asks ([`Consult`]) only while a shared
//! check fails here. With the feature `fleet`, [`Fleet`] is the asking side over HTTP; the
//! answering side (`GET <readiness path>/<name>?fleet=<ms>`) is always on, so that a
//! replica built without the feature still answers its peers.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::vocabulary::Status;

/// A future the engine can hold without naming its type.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What asking the fleet about one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Replicas asked that answered, this one left out.
    pub(crate) answered: usize,
    /// Of those, the ones whose own run of the check fails.
    pub(crate) failing: usize,
    /// Replicas asked that did not answer in time (or answered nonsense).
    pub(crate) silent: usize,
    /// Why the fleet could not be listed, when it could not.
    pub(crate) unlisted: Option<String>,
}

/// Whether a failure here is the fleet's or this replica's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Replicas known to fail, this one included.
    pub(crate) failing: usize,
    /// Replicas counted, this one included.
    pub(crate) of: usize,
    /// A strict majority fails: the failure is shared, and readiness is held.
    pub(crate) shared: bool,
}

impl Tally {
    /// The rule: a failure is shared when a strict majority of the replicas counted, this
    /// one included, report it failing. A replica that did not answer is counted and does
    /// not confirm, so a replica cut off from its peers always finds its failure local; a
    /// fleet that could not be listed confirms nothing.
    pub(crate) fn verdict(&self) -> Verdict {
        if self.unlisted.is_some() {
            return Verdict {
                failing: 1,
                of: 1,
                shared: false,
            };
        }
        let failing = 1 + self.failing;
        let of = 1 + self.answered + self.silent;
        Verdict {
            failing,
            of,
            shared: 2 * failing > of,
        }
    }
}

impl Verdict {
    /// The reason a check shows for it, with the local run's own reason after it.
    pub(crate) fn reason(&self, local: Option<&str>) -> String {
        let here = local.map(|r| format!("; here: {r}")).unwrap_or_default();
        if self.shared {
            format!(
                "failing on {} of {} replicas: readiness held{here}",
                self.failing, self.of
            )
        } else {
            format!(
                "failing on {} of {} replicas: not shared, readiness fails{here}",
                self.failing, self.of
            )
        }
    }
}

/// How the engine asks the fleet about a check: `name`, with results no older than
/// `max_age` (older failures are taken as they are), each peer given `timeout`.
pub(crate) trait Consult: Send + Sync + std::fmt::Debug {
    fn ask<'a>(
        &'a self,
        name: &'a str,
        max_age: Duration,
        timeout: Duration,
    ) -> BoxFuture<'a, Tally>;
}

/// A peer's answer about one check: its status and who it is, in the body of
/// `GET <readiness path>/<name>?fleet=<ms>`.
pub(crate) fn peer_body(status: Status, replica: u64) -> String {
    format!(
        "{{\"status\":\"{}\",\"replica\":\"{replica:016x}\"}}",
        status.as_str()
    )
}

/// The `fleet` query parameter: how old, in milliseconds, a result may be.
pub(crate) const QUERY: &str = "fleet";

/// An identifier for this replica, different for every `Health` built: a peer that answers
/// with it is this replica itself (a headless Service lists every replica, this one too).
pub(crate) fn replica_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static BUILT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(BUILT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

#[cfg(feature = "fleet")]
pub use asking::Fleet;

#[cfg(feature = "fleet")]
mod asking {
    use std::collections::HashSet;
    use std::fmt;
    use std::io;
    use std::net::SocketAddr;
    use std::str::FromStr;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Empty, Limited};

    use super::{BoxFuture, Consult, Tally};

    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    type Client = Arc<
        dyn Fn(http::Request<Empty<Bytes>>) -> BoxFuture<'static, Result<Bytes, BoxError>>
            + Send
            + Sync,
    >;
    type Discover = Arc<dyn Fn() -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> + Send + Sync>;

    /// The largest peer answer read; a real one is some 50 bytes.
    const MAX_ANSWER: usize = 4096;
    /// How many peers are asked at most, unless set.
    const DEFAULT_SAMPLE: usize = 10;
    /// How much longer than the check's own timeout a peer may take, unless set: a peer
    /// may have to run its check first.
    const DEFAULT_SLACK: Duration = Duration::from_millis(250);

    /// The replicas of this service, asked whether a [shared](crate::Check::shared) check
    /// fails for them too.
    ///
    /// While a shared check fails here, this replica asks its peers, on the probe port
    /// they already serve, for that check's own result (never their readiness, so that
    /// nothing feeds back). When a strict majority of the replicas, this one included,
    /// report it failing, the outage is the fleet's: the check shows `warn` ("failing on
    /// 3 of 3 replicas: readiness held") and readiness keeps passing, so that the Service
    /// keeps its endpoints and answers that need no database still get through. Otherwise
    /// the failure is this replica's own and readiness fails, as for any critical check.
    ///
    /// | outage | what readiness does |
    /// |---|---|
    /// | one replica lost the dependency (its node, network, credentials) | that replica fails readiness |
    /// | every replica lost it (the database is down) | every replica stays ready, the check shows `warn` |
    /// | a replica cut off from the dependency and from its peers | fails readiness: nobody confirms |
    /// | a new release that cannot reach the dependency, beside healthy replicas | the new replicas stay unready: a rollout halts |
    /// | a single replica (the fleet lists only itself) | stays ready: 1 of 1 is the whole fleet |
    /// | the fleet cannot be listed (DNS fails) | fails readiness |
    ///
    /// Peers are asked only while a shared check fails, concurrently, each under a
    /// [timeout](Fleet::timeout), at most [`sample`](Fleet::sample) of them (a random
    /// sample in a larger fleet), and at most once per check per cache time. A peer
    /// answers from its cache; only when its result is a pass older than the asker's
    /// failing run does it run its check first (single flight), so that the replica that
    /// sees an outage first is not told "pass" by results that predate it.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_health::{Check, Fleet, Health};
    ///
    /// # async fn select_1() -> Result<(), std::io::Error> { Ok(()) }
    /// // On Kubernetes: a headless Service with `publishNotReadyAddresses: true` that
    /// // lists every replica, ready or not, on the port that serves the probes.
    /// let fleet: Fleet = "app-peers.default.svc.cluster.local:8080".parse().unwrap();
    /// let health = Health::builder()
    ///     .check(Check::new("postgres", select_1).shared())
    ///     .fleet(fleet.sample(5))
    ///     .build();
    /// # drop(health);
    /// ```
    #[derive(Clone)]
    #[must_use = "a Fleet does nothing until it is given to Builder::fleet"]
    pub struct Fleet {
        peers: Peers,
        sample: usize,
        timeout: Option<Duration>,
        client: Client,
    }

    #[derive(Clone)]
    enum Peers {
        /// `host:port` names, resolved afresh at each consultation.
        Hosts(Vec<String>),
        Addrs(Vec<SocketAddr>),
        Discover(Discover),
    }

    impl Fleet {
        /// Every address a DNS name has, resolved afresh at each consultation: on
        /// Kubernetes, a headless Service with `publishNotReadyAddresses: true`.
        ///
        /// ```
        /// let fleet = tower_health::Fleet::dns("app-peers", 8080);
        /// # drop(fleet);
        /// ```
        pub fn dns(name: impl Into<String>, port: u16) -> Fleet {
            Fleet::with_peers(Peers::Hosts(vec![format!("{}:{port}", name.into())]))
        }

        /// A fixed list of replicas; this replica's own address may be among them.
        ///
        /// ```
        /// use std::net::SocketAddr;
        ///
        /// let peers: [SocketAddr; 2] = ["10.0.0.7:8080".parse().unwrap(), "10.0.0.8:8080".parse().unwrap()];
        /// let fleet = tower_health::Fleet::addrs(peers);
        /// # drop(fleet);
        /// ```
        pub fn addrs(addrs: impl IntoIterator<Item = SocketAddr>) -> Fleet {
            Fleet::with_peers(Peers::Addrs(addrs.into_iter().collect()))
        }

        /// The replicas as an async function lists them at each consultation (EndpointSlices,
        /// Consul, anything); an error counts as a fleet that cannot be listed.
        ///
        /// ```
        /// use std::net::SocketAddr;
        ///
        /// let fleet = tower_health::Fleet::discover(|| async {
        ///     Ok(vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()])
        /// });
        /// # drop(fleet);
        /// ```
        pub fn discover<F, Fut>(discover: F) -> Fleet
        where
            F: Fn() -> Fut + Send + Sync + 'static,
            Fut: std::future::Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static,
        {
            Fleet::with_peers(Peers::Discover(Arc::new(move || Box::pin(discover()))))
        }

        fn with_peers(peers: Peers) -> Fleet {
            let unset: Client = Arc::new(|_| Box::pin(async { Err("no client".into()) }));
            let fleet = Fleet {
                peers,
                sample: DEFAULT_SAMPLE,
                timeout: None,
                client: unset,
            };
            fleet.client(hyper_client())
        }

        /// Asks at most `n` peers (a random sample of them), 10 unless set; at least 1.
        ///
        /// In a fleet larger than the sample, the majority is that of this replica and
        /// the sample: an estimate, which is what a large fleet needs.
        pub fn sample(mut self, n: usize) -> Fleet {
            self.sample = n.max(1);
            self
        }

        /// How long a peer may take to answer, listing included.
        ///
        /// Unless set, the check's own timeout plus 250 ms, since a peer may run its check
        /// before it answers. A peer that does not answer in time does not confirm.
        pub fn timeout(mut self, timeout: Duration) -> Fleet {
            self.timeout = Some(timeout);
            self
        }

        /// The HTTP client that asks the peers, in place of the built-in one (hyper's,
        /// plain HTTP/1.1): any tower service, for instance one that speaks mTLS.
        ///
        /// ```
        /// use bytes::Bytes;
        /// use http_body_util::{Empty, Full};
        ///
        /// // A client that answers every question itself, as a test might.
        /// let client = tower::service_fn(|_: http::Request<Empty<Bytes>>| async {
        ///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
        ///         br#"{"status":"fail","replica":"1"}"#,
        ///     ))))
        /// });
        /// let fleet = tower_health::Fleet::dns("app-peers", 8080).client(client);
        /// # drop(fleet);
        /// ```
        pub fn client<S, B>(mut self, client: S) -> Fleet
        where
            S: tower_service::Service<http::Request<Empty<Bytes>>, Response = http::Response<B>>
                + Clone
                + Send
                + Sync
                + 'static,
            S::Future: Send + 'static,
            S::Error: Into<BoxError>,
            B: http_body::Body<Data = Bytes> + Send + 'static,
            B::Error: Into<BoxError>,
        {
            self.client = Arc::new(move |request| {
                let mut client = client.clone();
                Box::pin(async move {
                    std::future::poll_fn(|cx| client.poll_ready(cx))
                        .await
                        .map_err(Into::into)?;
                    let response = client.call(request).await.map_err(Into::into)?;
                    let body = Limited::new(response.into_body(), MAX_ANSWER);
                    Ok(body.collect().await?.to_bytes())
                })
            });
            self
        }

        /// Made ready to ask, for a `Health` whose readiness answers on `readiness_path`
        /// and who is `me`.
        pub(crate) fn into_consult(self, readiness_path: &str, me: u64) -> Arc<dyn Consult> {
            Arc::new(Asking {
                client: self.client.clone(),
                fleet: self,
                readiness_path: readiness_path.to_owned(),
                me,
            })
        }
    }

    impl FromStr for Fleet {
        type Err = String;

        /// `host:port` entries separated by commas (`PEERS=10.0.0.7:8080,10.0.0.8:8080`),
        /// or one `name:port` that DNS resolves to every replica. Each entry is resolved
        /// afresh at each consultation.
        fn from_str(s: &str) -> Result<Fleet, String> {
            let hosts: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect();
            if hosts.is_empty() {
                return Err("no peer given: expected host:port[,host:port...]".to_owned());
            }
            for host in &hosts {
                let port = host.rsplit_once(':').map(|(_, port)| port);
                if port.and_then(|p| p.parse::<u16>().ok()).is_none() {
                    return Err(format!("{host:?} is not host:port"));
                }
            }
            Ok(Fleet::with_peers(Peers::Hosts(hosts)))
        }
    }

    impl fmt::Debug for Fleet {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let peers = match &self.peers {
                Peers::Hosts(hosts) => format!("{hosts:?}"),
                Peers::Addrs(addrs) => format!("{addrs:?}"),
                Peers::Discover(_) => "discovered".to_owned(),
            };
            f.debug_struct("Fleet")
                .field("peers", &peers)
                .field("sample", &self.sample)
                .field("timeout", &self.timeout)
                .finish()
        }
    }

    /// The built-in client: hyper's, through hyper-util, plain HTTP/1.1.
    fn hyper_client() -> hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Empty<Bytes>,
    > {
        use hyper_util::client::legacy::Client as Legacy;
        use hyper_util::rt::TokioExecutor;
        Legacy::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http()
    }

    struct Asking {
        fleet: Fleet,
        client: Client,
        readiness_path: String,
        me: u64,
    }

    impl fmt::Debug for Asking {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Asking")
                .field("fleet", &self.fleet)
                .finish_non_exhaustive()
        }
    }

    /// One peer's answer.
    enum Answer {
        Failing,
        NotFailing,
        Me,
        Silent,
    }

    impl Consult for Asking {
        fn ask<'a>(
            &'a self,
            name: &'a str,
            max_age: Duration,
            timeout: Duration,
        ) -> BoxFuture<'a, Tally> {
            Box::pin(async move {
                let timeout = self.fleet.timeout.unwrap_or(timeout + DEFAULT_SLACK);
                let listed = tokio::time::timeout(timeout, self.list()).await;
                let mut addrs = match listed {
                    Ok(Ok(addrs)) => addrs,
                    Ok(Err(error)) => return unlisted(error.to_string()),
                    Err(_) => return unlisted(format!("no list of peers within {timeout:?}")),
                };
                sample(&mut addrs, self.fleet.sample);
                let max_age_ms = max_age.as_millis().min(u128::from(u64::MAX));
                let asks = addrs.iter().map(|addr| {
                    let uri = format!(
                        "http://{addr}{}/{name}?{}={max_age_ms}",
                        self.readiness_path,
                        super::QUERY
                    );
                    async move {
                        let answer = tokio::time::timeout(timeout, self.ask_one(&uri)).await;
                        answer.unwrap_or(Answer::Silent)
                    }
                });
                let mut tally = Tally {
                    answered: 0,
                    failing: 0,
                    silent: 0,
                    unlisted: None,
                };
                for answer in futures_util::future::join_all(asks).await {
                    match answer {
                        Answer::Failing => {
                            tally.answered += 1;
                            tally.failing += 1;
                        }
                        Answer::NotFailing => tally.answered += 1,
                        Answer::Silent => tally.silent += 1,
                        Answer::Me => {}
                    }
                }
                tally
            })
        }
    }

    fn unlisted(why: String) -> Tally {
        Tally {
            answered: 0,
            failing: 0,
            silent: 0,
            unlisted: Some(why),
        }
    }

    impl Asking {
        async fn list(&self) -> io::Result<Vec<SocketAddr>> {
            let mut addrs = match &self.fleet.peers {
                Peers::Addrs(addrs) => addrs.clone(),
                Peers::Discover(discover) => discover().await?,
                Peers::Hosts(hosts) => {
                    let mut addrs = Vec::new();
                    let mut failed = None;
                    for host in hosts {
                        match tokio::net::lookup_host(host.as_str()).await {
                            Ok(found) => addrs.extend(found),
                            Err(error) => failed = Some(error),
                        }
                    }
                    match failed {
                        Some(error) if addrs.is_empty() => return Err(error),
                        _ => addrs,
                    }
                }
            };
            let mut seen = HashSet::new();
            addrs.retain(|addr| seen.insert(*addr));
            Ok(addrs)
        }

        async fn ask_one(&self, uri: &str) -> Answer {
            let Ok(request) = http::Request::get(uri)
                .header(http::header::ACCEPT, "application/health+json")
                .body(Empty::new())
            else {
                return Answer::Silent;
            };
            let Ok(body) = (self.client)(request).await else {
                return Answer::Silent;
            };
            let Ok(said) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return Answer::Silent;
            };
            let replica = said.get("replica").and_then(|r| r.as_str());
            if replica.map(|r| u64::from_str_radix(r, 16)) == Some(Ok(self.me)) {
                return Answer::Me;
            }
            // Only a failure confirms; anything else a peer says does not.
            match said.get("status").and_then(|s| s.as_str()) {
                Some("fail") => Answer::Failing,
                _ => Answer::NotFailing,
            }
        }
    }

    /// Keeps a random `n` of `addrs` (all of them when there are no more).
    fn sample(addrs: &mut Vec<SocketAddr>, n: usize) {
        use std::hash::{BuildHasher, Hasher};
        if addrs.len() <= n {
            return;
        }
        let seed = std::collections::hash_map::RandomState::new();
        for i in 0..n {
            let mut hasher = seed.build_hasher();
            hasher.write_usize(i);
            let j = i + (hasher.finish() as usize) % (addrs.len() - i);
            addrs.swap(i, j);
        }
        addrs.truncate(n);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_sample_keeps_n_distinct_addresses_of_the_list() {
            let all: Vec<SocketAddr> = (1..=100)
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                .collect();
            let mut some = all.clone();
            sample(&mut some, 10);
            assert_eq!(some.len(), 10);
            assert_eq!(some.iter().collect::<HashSet<_>>().len(), 10);
            assert!(some.iter().all(|a| all.contains(a)));
            let mut few = all[..3].to_vec();
            sample(&mut few, 10);
            assert_eq!(few, all[..3]);
        }

        #[tokio::test]
        async fn a_list_of_hosts_is_the_addresses_of_those_that_resolve() {
            // A port that is not a number fails at once, with no look-up.
            let asking = |hosts: &str| {
                let fleet: Fleet = "127.0.0.1:1".parse().unwrap();
                let fleet = Fleet {
                    peers: Peers::Hosts(hosts.split(',').map(str::to_owned).collect()),
                    ..fleet
                };
                Asking {
                    client: fleet.client.clone(),
                    fleet,
                    readiness_path: "/readyz".into(),
                    me: 0,
                }
            };
            let some = asking("127.0.0.1:7,localhost:port,127.0.0.1:7")
                .list()
                .await;
            assert_eq!(some.unwrap(), [SocketAddr::from(([127, 0, 0, 1], 7))]);
            assert!(asking("localhost:port").list().await.is_err());
        }

        #[test]
        fn peers_parse_from_a_comma_separated_list_and_refuse_what_is_not_host_port() {
            let fleet: Fleet = "a:1, b:2,".parse().unwrap();
            assert!(matches!(&fleet.peers, Peers::Hosts(h) if h == &["a:1", "b:2"]));
            assert!("".parse::<Fleet>().is_err());
            assert!("a".parse::<Fleet>().is_err());
            assert!("a:port".parse::<Fleet>().is_err());
            assert!("a:70000".parse::<Fleet>().is_err());
            assert!("[::1]:80".parse::<Fleet>().is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(answered: usize, failing: usize, silent: usize) -> Verdict {
        Tally {
            answered,
            failing,
            silent,
            unlisted: None,
        }
        .verdict()
    }

    #[test]
    fn a_strict_majority_with_this_replica_makes_a_failure_shared() {
        // Fleet of 1: the whole fleet fails.
        assert!(tally(0, 0, 0).shared);
        // Fleet of 2: one other failing makes 2 of 2; one passing makes 1 of 2.
        assert!(tally(1, 1, 0).shared);
        assert!(!tally(1, 0, 0).shared);
        // Fleet of 3.
        assert!(tally(2, 1, 0).shared);
        assert!(!tally(2, 0, 0).shared);
        assert!(!tally(1, 0, 1).shared);
        // Silent peers count and do not confirm.
        assert!(!tally(0, 0, 2).shared);
        assert_eq!(
            tally(1, 1, 1),
            Verdict {
                failing: 2,
                of: 3,
                shared: true
            }
        );
        // Fleet of 4: 2 of 4 is no strict majority.
        assert!(!tally(3, 1, 0).shared);
        assert!(tally(3, 2, 0).shared);
    }

    #[test]
    fn a_fleet_that_cannot_be_listed_confirms_nothing() {
        let verdict = Tally {
            answered: 0,
            failing: 0,
            silent: 0,
            unlisted: Some("dns".into()),
        }
        .verdict();
        assert!(!verdict.shared);
    }

    #[test]
    fn the_reason_says_how_many_replicas_fail_and_what_readiness_does() {
        let shared = tally(2, 2, 0);
        assert_eq!(
            shared.reason(Some("connection refused")),
            "failing on 3 of 3 replicas: readiness held; here: connection refused"
        );
        assert_eq!(
            tally(2, 0, 0).reason(None),
            "failing on 1 of 3 replicas: not shared, readiness fails"
        );
    }

    #[test]
    fn replicas_get_different_ids() {
        assert_ne!(replica_id(), replica_id());
    }

    #[test]
    fn a_peer_body_carries_status_and_replica_only() {
        assert_eq!(
            peer_body(Status::Fail, 255),
            r#"{"status":"fail","replica":"00000000000000ff"}"#
        );
    }
}
