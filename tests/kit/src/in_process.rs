//! What the in-process engine tests share: a layered service over a fixed inner service,
//! a GET through `oneshot`, and a check that counts its runs.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};
use tower_health::{Check, Health};

pub type Svc = tower_health::HealthService<
    tower::util::ServiceFn<
        fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
    >,
>;

/// The inner service: `200 inner` for anything.
pub fn inner(
    _req: Request<Full<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"inner")))))
}

pub fn service(health: &Health) -> Svc {
    health.layer().layer(tower::service_fn(inner as fn(_) -> _))
}

/// The status and body of the answer to `req`.
pub async fn get_with(svc: &Svc, req: http::request::Builder) -> (StatusCode, String) {
    let req = req.body(Full::default()).unwrap();
    let response = svc.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

pub async fn get(svc: &Svc, uri: &str) -> (StatusCode, String) {
    get_with(svc, Request::get(uri)).await
}

/// A check that counts its runs and passes or fails as `ok` says, after `delay`.
pub fn counted(
    name: &'static str,
    runs: &Arc<AtomicUsize>,
    ok: &Arc<AtomicBool>,
    delay: Duration,
) -> Check {
    let (runs, ok) = (runs.clone(), ok.clone());
    Check::new(name, move || {
        let (runs, ok) = (runs.clone(), ok.clone());
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if ok.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("connection refused")
            }
        }
    })
}

/// A run counter and an `ok` switch for [`counted`].
pub fn flags(ok: bool) -> (Arc<AtomicUsize>, Arc<AtomicBool>) {
    (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(ok)))
}
