//! What a probe request asks for, read from generated queries and `Accept` headers through
//! `oneshot`: the answer's format is the model's (of the machine formats, the acceptable
//! range with the highest quality, the first listed among equals, JSON when there is
//! none; the HTML page only when HTML is ranked strictly above that), `verbose` is
//! the model's (the last `verbose` parameter after form-decoding, unless `0`, `false`,
//! `no` or `off`), and no query or header, however odd, gets anything but an answer.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};
use tower_health::{Check, Health};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Text,
    Html,
}

/// What an answer was: its format and whether it was verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    format: Format,
    verbose: bool,
}

async fn ready_health() -> Health {
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .build();
    health.refresh().await;
    health.ready();
    health
}

async fn ask(health: &Health, request: Request<Full<Bytes>>) -> Answer {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
    });
    let response = health
        .layer()
        .layer(inner)
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    match content_type.as_str() {
        "application/health+json" => {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            Answer {
                format: Format::Json,
                verbose: json.get("checks").is_some(),
            }
        }
        "text/plain; charset=utf-8" => Answer {
            format: Format::Text,
            verbose: text != "ok",
        },
        "text/html; charset=utf-8" => Answer {
            format: Format::Html,
            verbose: !text.contains("Show every check"),
        },
        other => panic!("content type {other:?}"),
    }
}

// === the models ===

/// Form-decoding as the `application/x-www-form-urlencoded` rules say: `+` is a space,
/// `%XY` a byte, a `%` without two hex digits itself; bytes that are not UTF-8 become
/// U+FFFD.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && is_hex(bytes[i + 1]) && is_hex(bytes[i + 2]) => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// `verbose` as the docs say: the last `verbose` parameter decides; without a value or
/// with any value but `0`, `false`, `no` and `off` it is on.
fn verbose_model(query: Option<&str>) -> bool {
    let mut verbose = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(key) == "verbose" {
            verbose = !["0", "false", "no", "off"].contains(&form_decode(value).as_str());
        }
    }
    verbose
}

/// A quality value in thousandths by the grammar (`0`, `0.ddd`, `1`, `1.000`, up to three
/// decimals); anything else counts as 1, and a value over 1 as 1.
fn quality_model(q: &str) -> u32 {
    let q = q.trim();
    let valid = match q.split_once('.') {
        None => q == "0" || q == "1",
        Some((int, frac)) => {
            (int == "0" || int == "1")
                && frac.len() <= 3
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
    };
    if !valid {
        return 1000;
    }
    let value: f64 = q.parse().unwrap();
    ((value * 1000.0).round() as u32).min(1000)
}

/// The format: of the machine formats (`text/plain` and `text/*` for text; the JSON
/// types, `application/*` and `*/*` for JSON) with a quality above 0, the one with the
/// highest quality, the first listed among equals; JSON when there is none. The page
/// (`text/html`, `application/xhtml+xml`) only when its quality is above that one's, or
/// when no machine format is acceptable. A header value that is not visible ASCII is
/// skipped whole.
fn format_model(values: &[Vec<u8>]) -> Format {
    let mut ranges = Vec::new();
    for value in values {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        if !value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            continue;
        }
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap().trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(quality_model))
                .unwrap_or(1000);
            let format = match media.as_str() {
                "text/plain" | "text/*" => Format::Text,
                "application/health+json" | "application/json" | "application/*" | "*/*" => {
                    Format::Json
                }
                "text/html" | "application/xhtml+xml" => Format::Html,
                _ => continue,
            };
            if quality > 0 {
                ranges.push((quality, ranges.len(), format));
            }
        }
    }
    let machine = ranges
        .iter()
        .filter(|(_, _, format)| *format != Format::Html)
        .max_by_key(|(q, position, _)| (*q, std::cmp::Reverse(*position)));
    let html = ranges
        .iter()
        .filter(|(_, _, format)| *format == Format::Html)
        .map(|(q, _, _)| *q)
        .max();
    match (html, machine) {
        (Some(h), Some((m, _, _))) if h > *m => Format::Html,
        (Some(_), None) => Format::Html,
        (_, Some((_, _, format))) => *format,
        (None, None) => Format::Json,
    }
}

// === the generators ===

fn query_part() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "verbose",
        "verb%6Fse",
        "%76erbose",
        "VERBOSE",
        "verbose+",
        "exclude",
        "x",
        "",
        "%",
        "%zz",
        "+",
        "verbose%",
    ]);
    let values = prop::sample::select(vec![
        None,
        Some(""),
        Some("0"),
        Some("1"),
        Some("false"),
        Some("no"),
        Some("off"),
        Some("on"),
        Some("%30"),
        Some("f%61lse"),
        Some("false+"),
        Some("db"),
        Some("%"),
        Some("%e9"),
    ]);
    (keys, values).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k.to_owned(),
    })
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::collection::vec(query_part(), 0..6).prop_map(|parts| parts.join("&")))
}

fn media_range() -> impl Strategy<Value = String> {
    let media = prop::sample::select(vec![
        "text/plain",
        "TEXT/Plain",
        "text/*",
        "application/json",
        "application/health+json",
        "Application/*",
        "*/*",
        "text/html",
        "application/xhtml+xml",
        "image/png",
        "",
        "text",
    ]);
    let quality = prop::sample::select(vec![
        "0", "0.0", "0.5", "0.50", "0.500", "0.001", "0.999", "1", "1.0", "1.000", "abc", "",
        "1.5", "2", "-1", "0.5x", " 0.3 ",
    ]);
    let params = prop::collection::vec(
        prop_oneof![
            quality.prop_map(|q| format!(";q={q}")),
            Just("; charset=utf-8".to_owned()),
            Just(";level=1".to_owned()),
        ],
        0..3,
    );
    (media, params, prop::bool::ANY).prop_map(|(media, params, space)| {
        let lead = if space { " " } else { "" };
        format!("{lead}{media}{}", params.concat())
    })
}

/// `Accept` header values: lists of media ranges, now and then one with a byte that is
/// not visible ASCII.
fn accept_values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let value = (
        prop::collection::vec(media_range(), 1..5),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(ranges, odd)| {
            let mut value = ranges.join(",").into_bytes();
            if odd {
                value.extend_from_slice(b", text/plain\xe9");
            }
            value
        });
    prop::collection::vec(value, 0..3)
}

fn request(query: Option<&str>, accepts: &[Vec<u8>]) -> Option<Request<Full<Bytes>>> {
    let uri = match query {
        Some(q) => format!("/readyz?{q}"),
        None => "/readyz".to_owned(),
    };
    let uri: Uri = uri.parse().ok()?;
    let mut request = Request::get(uri).body(Full::default()).unwrap();
    for value in accepts {
        let value = HeaderValue::from_bytes(value).ok()?;
        request.headers_mut().append(ACCEPT, value);
    }
    Some(request)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn format_and_verbose_follow_the_models(query in query(), accepts in accept_values()) {
        let request = request(query.as_deref(), &accepts);
        prop_assume!(request.is_some(), "not a valid request");
        let answer = runtime().block_on(async {
            ask(&ready_health().await, request.unwrap()).await
        });
        let expected = Answer {
            format: format_model(&accepts),
            verbose: verbose_model(query.as_deref()),
        };
        prop_assert_eq!(answer, expected);
    }

    #[test]
    fn any_query_and_accept_header_gets_an_answer(
        query in prop::collection::vec(any::<u8>(), 0..200),
        accept in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        // Whatever `http` lets through as a query and a header value.
        let query: String = query
            .iter()
            .map(|&b| match char::from(b.clamp(0x21, 0x7e)) {
                '#' => '%',
                c => c,
            })
            .collect();
        let request = request(Some(&query), std::slice::from_ref(&accept))
            .or_else(|| request(Some(&query), &[]));
        prop_assume!(request.is_some(), "not a valid request");
        runtime().block_on(async {
            let _ = ask(&ready_health().await, request.unwrap()).await;
        });
    }
}

#[test]
fn the_models_agree_with_the_documented_examples() {
    assert!(verbose_model(Some("verbose")));
    assert!(verbose_model(Some("verb%6Fse=1")));
    assert!(!verbose_model(Some("verbose=1&verbose=off")));
    assert!(!verbose_model(Some("verbose=f%61lse")));
    assert!(verbose_model(Some("verbose=false+")));
    assert_eq!(format_model(&[b"text/plain".to_vec()]), Format::Text);
    assert_eq!(format_model(&[b"*/*, text/plain".to_vec()]), Format::Json);
    assert_eq!(
        format_model(&[b"text/plain;q=0.5, */*;q=0.4".to_vec()]),
        Format::Text
    );
    assert_eq!(format_model(&[b"text/plain;q=0".to_vec()]), Format::Json);
    assert_eq!(
        format_model(&[b"text/plain;q=abc, application/json".to_vec()]),
        Format::Text
    );
}
