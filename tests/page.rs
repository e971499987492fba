//! The page for people, through `tower::ServiceExt::oneshot`: who gets it (a browser's
//! `Accept`), who keeps health+json (the kubelet's `*/*`, JSON clients), its headers, what
//! it shows and withholds, and its reload interval.

use kit::common;

use std::convert::Infallible;

use bytes::Bytes;
use common::{assert_probe_headers, bounded, Reply};
use http::header::{ACCEPT, CONTENT_SECURITY_POLICY, REFRESH};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use tower_health::{Check, Health, Reasons};

/// What Chromium sends when a person opens a URL.
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                       image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
const HTML: &str = "text/html; charset=utf-8";

async fn send(health: &Health, method: Method, uri: &str, accept: Option<&str>) -> Reply {
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
    });
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let request = request.body(Full::default()).unwrap();
    let response = bounded("the layer", health.layer().layer(inner).oneshot(request))
        .await
        .unwrap();
    Reply::collect(response).await
}

/// A ready `Health` with a passing check and a failing one whose reason is markup.
async fn health_with(reasons: Reasons) -> Health {
    let health = Health::builder()
        .check(Check::new("database", || async {
            Err::<(), _>("<script>alert(1)</script> refused")
        }))
        .check(Check::new("cache", || async { Ok::<(), &str>(()) }).non_critical())
        .reasons(reasons)
        .build();
    health.refresh().await;
    health.ready();
    health
}

/// The `<tr>` of the entry called `name`.
fn row<'p>(page: &'p str, name: &str) -> &'p str {
    let start = page
        .find(&format!("<tr data-name=\"{name}\""))
        .unwrap_or_else(|| panic!("no row for {name} in {page}"));
    let end = start + page[start..].find("</tr>").unwrap();
    &page[start..end]
}

#[tokio::test]
async fn browsers_get_the_page_with_a_strict_content_security_policy() {
    let health = health_with(Reasons::always()).await;
    let reply = send(&health, Method::GET, "/readyz?verbose", Some(BROWSER)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_probe_headers(&reply, HTML, "page");
    let policy = reply.header(CONTENT_SECURITY_POLICY).expect("a policy");
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(policy.contains("style-src 'sha256-"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(reply.content_length(), Some(reply.body.len()));
    assert_eq!(reply.header(REFRESH), None, "no reload unless asked for");

    let page = reply.text();
    assert!(page.contains("data-status=\"fail\""), "{page}");
    let database = row(page, "database");
    assert!(database.contains("data-status=\"fail\""), "{database}");
    assert!(
        database.contains("&lt;script&gt;alert(1)&lt;/script&gt; refused"),
        "{database}"
    );
    assert!(!page.contains("<script"), "{page}");
    let cache = row(page, "cache");
    assert!(cache.contains("data-status=\"pass\""), "{cache}");
    assert!(cache.contains("non-critical"), "{cache}");
    assert!(row(page, "lifecycle").contains(">ready</td>"));
}

#[tokio::test]
async fn the_kubelet_and_json_clients_keep_health_json() {
    let health = health_with(Reasons::always()).await;
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("text/html, application/json"),
    ] {
        let reply = send(&health, Method::GET, "/readyz?verbose", accept).await;
        assert_probe_headers(&reply, "application/health+json", &format!("{accept:?}"));
        assert_eq!(reply.header(CONTENT_SECURITY_POLICY), None);
        assert_eq!(reply.json()["status"], "fail", "{accept:?}");
    }
    let reply = send(&health, Method::GET, "/readyz", Some("text/plain")).await;
    assert_probe_headers(&reply, "text/plain; charset=utf-8", "text");
}

#[tokio::test]
async fn the_page_withholds_reasons_unless_the_policy_allows_them() {
    let health = health_with(Reasons::withheld()).await;
    let reply = send(&health, Method::GET, "/readyz?verbose", Some(BROWSER)).await;
    let page = reply.text();
    assert!(!page.contains("refused"), "{page}");
    assert!(!page.contains("script"), "{page}");
    assert!(row(page, "database").contains("reason withheld"));
    // The application still reads the reason.
    let report = health.report();
    let output = report.check("database").unwrap().output();
    assert!(output.unwrap().contains("refused"));
}

#[tokio::test]
async fn a_plain_browser_request_gets_the_verdict_and_a_link_to_every_check() {
    let health = health_with(Reasons::always()).await;
    let reply = send(&health, Method::GET, "/readyz", Some(BROWSER)).await;
    assert_probe_headers(&reply, HTML, "plain page");
    let page = reply.text();
    assert!(page.contains("failed: database"), "{page}");
    assert!(page.contains("<a href=\"?verbose\">"), "{page}");
    assert!(!page.contains("<table"), "{page}");
    // One check alone, as /readyz/NAME answers it.
    let reply = send(&health, Method::GET, "/readyz/cache?verbose", Some(BROWSER)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(row(reply.text(), "cache").contains("data-status=\"pass\""));
}

#[tokio::test]
async fn refresh_asks_the_browser_to_reload_the_page() {
    let health = health_with(Reasons::always()).await;
    for (query, want) in [
        ("?verbose&refresh=10", Some("10")),
        ("?verbose&refresh", Some("5")),
        ("?verbose&refresh=0", None),
        ("?refresh=2", Some("2")),
    ] {
        let reply = send(
            &health,
            Method::GET,
            &format!("/readyz{query}"),
            Some(BROWSER),
        )
        .await;
        assert_eq!(reply.header(REFRESH), want, "{query}");
    }
    // Machines are never told to reload.
    let reply = send(&health, Method::GET, "/readyz?refresh=10", Some("*/*")).await;
    assert_eq!(reply.header(REFRESH), None);
}

#[tokio::test]
async fn head_of_a_page_gets_its_headers_and_no_body() {
    let health = health_with(Reasons::always()).await;
    let get = send(&health, Method::GET, "/readyz?verbose", Some(BROWSER)).await;
    let head = send(&health, Method::HEAD, "/readyz?verbose", Some(BROWSER)).await;
    assert_eq!(head.status, get.status);
    assert_eq!(head.header("content-type"), Some(HTML));
    assert_eq!(
        head.header(CONTENT_SECURITY_POLICY),
        get.header(CONTENT_SECURITY_POLICY)
    );
    assert!(head.body.is_empty());
    assert!(head.content_length().unwrap() > 0);
}
