//! Request → response for the metrics endpoint, with no I/O: [`respond`] is what the server
//! calls for every request, and what the unit tests call directly.
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | Prometheus exposition (OpenMetrics when the scraper asks for it) |
//! | `/healthz` | 200 when every loop comes round in time, else 503 (names the stalled loop) |
//! | `/readyz` | 200 when alive and every readiness condition holds, else 503 |
//! | `/` | the live page; `/live.js`, `/live.css` its assets; `/api/live` its data |

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::health::CheckState;
use super::{live, Metrics};

pub(crate) type Body = Full<Bytes>;

pub(crate) const PAGE: &str = include_str!("page/index.html");
pub(crate) const SCRIPT: &str = include_str!("page/live.js");
pub(crate) const STYLE: &str = include_str!("page/live.css");

/// The page loads nothing but its own script, style and data.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Answers one request. `accept` is the request's `Accept` header.
pub(crate) fn respond(
    metrics: &Metrics,
    method: &Method,
    path_and_query: &str,
    accept: Option<&str>,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    match path {
        "/metrics" => {
            let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
            let (body, content_type) = metrics.encode(openmetrics);
            with_type(StatusCode::OK, body, content_type)
        }
        "/healthz" => healthz(metrics),
        "/readyz" => readyz(metrics),
        "/api/live" => {
            let after = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("after="))
                .and_then(|v| v.parse().ok());
            with_type(
                StatusCode::OK,
                live::render(metrics, after),
                "application/json",
            )
        }
        "/" | "/index.html" => {
            let mut r = with_type(StatusCode::OK, PAGE.into(), "text/html; charset=utf-8");
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_POLICY),
            );
            r
        }
        "/live.js" => with_type(
            StatusCode::OK,
            SCRIPT.into(),
            "text/javascript; charset=utf-8",
        ),
        "/live.css" => with_type(StatusCode::OK, STYLE.into(), "text/css; charset=utf-8"),
        // Browsers ask for it; an empty answer keeps their consoles quiet.
        "/favicon.ico" => {
            let mut r = Response::new(Body::default());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /healthz, /readyz or / (the live page)\n".into(),
        ),
    }
}

fn healthz(metrics: &Metrics) -> Response<Body> {
    let report = metrics.health();
    let mut body = String::from(if report.live() { "ok\n" } else { "stalled\n" });
    for l in &report.loops {
        let state = match (l.retired, l.overdue_s) {
            (true, _) => "finished".to_string(),
            (false, Some(o)) => format!("STALLED: overdue by {o:.1}s"),
            (false, None) => "ok".to_string(),
        };
        body.push_str(&format!(
            "loop {}: {state} (last came round {:.1}s ago)\n",
            l.name, l.age_s
        ));
    }
    let status = if report.live() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, body)
}

fn readyz(metrics: &Metrics) -> Response<Body> {
    let report = metrics.health();
    let mut body = String::from(if report.ready() {
        "ready\n"
    } else {
        "not ready\n"
    });
    if !report.live() {
        body.push_str("a loop is stalled (see /healthz)\n");
    }
    for (name, state) in &report.checks {
        let state = match state {
            CheckState::Pending => "not yet known",
            CheckState::Ok => "ok",
            CheckState::Failing => "FAILING",
        };
        body.push_str(&format!("{name}: {state}\n"));
    }
    let status = if report.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, body)
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    with_type(status, body, "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Every answer is the state of now; nothing here is worth caching.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
