//! A local stand-in for Twitter's v1.1 streaming endpoint, `POST /1.1/statuses/filter.json`,
//! and for the API v2 filtered stream, `GET /2/tweets/search/stream` with its rules endpoint.
//!
//! This module owns everything a test needs to play "Twitter" against the real client:
//!
//! * a tiny HTTP/1.1 server on a raw [`TcpListener`], one request per connection;
//! * an independent OAuth 1.0a HMAC-SHA1 verifier (RFC 5849 §3.4.1), so a signing bug in the
//!   client shows up as a `401` exactly as it would against Twitter;
//! * a per-connection script ([`Conn`] / [`Action`]) describing what the "stream" sends: framed
//!   records, keep-alives, pauses, and the faults a long-lived stream meets in practice (a chunk
//!   cut off mid-way, a truncated gzip stream, a server that goes silent);
//! * a log of every request it saw ([`Seen`]) for the test to assert on;
//! * for v2 (see the "API v2" section): a bearer-token check, a rule store behind
//!   `GET`/`POST /2/tweets/search/stream/rules` (add, delete by id or value, `dry_run`,
//!   `meta.summary`, per-rule errors), and `backfill_minutes` honoured by sending again the
//!   tweets this server streamed within those minutes (or refused, as for accounts without it).
//!   The v2 stream plays the same [`Conn`] scripts; error objects are just records.
//!
//! Every request is checked before the script is consulted: a bad or missing OAuth signature
//! gets `401`, any path other than [`FILTER_PATH`] gets `404`, and neither uses up a script entry.
//! The method is not checked (Twitter also took `GET` here); tests assert on [`Seen::method`].
//!
//! HTTP is written by hand on purpose: a server library would refuse to produce the broken
//! responses the fault actions need (or would "fix" them), and the tests must control every byte
//! and every chunk boundary the client receives.
//!
//! The module is included with `#[path]`/`mod` by several test binaries and by the
//! `twitter-standin` benchmark example, each of which uses only part of it.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, IoSlice, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The only path the stand-in streams v1.1 on; anything else outside `/2/` gets a `404`.
pub const FILTER_PATH: &str = "/1.1/statuses/filter.json";
/// The v2 filtered stream and its rules.
pub const V2_STREAM_PATH: &str = "/2/tweets/search/stream";
pub const V2_RULES_PATH: &str = "/2/tweets/search/stream/rules";
/// The app bearer token the stand-in accepts, shaped like a real one (URL-encoded characters
/// included).
pub const TEST_BEARER: &str = "AAAAAAAAAAAAAAAAAAAAAtpTestBearer%2Fv2%3DSecretPart0000000000000000";

/// How far `oauth_timestamp` may be from the server's clock, as Twitter enforces.
const TIMESTAMP_WINDOW_SECS: u64 = 300;
/// Target size of one chunk for [`Action::Records`]: big enough that chunk framing is
/// negligible in benchmarks.
const RECORDS_CHUNK: usize = 64 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// RFC 5849 §3.6: keep the RFC 3986 unreserved set, `%XX`-encode (uppercase) everything else.
/// `percent_encoding` always emits uppercase hex digits.
const OAUTH_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// OAuth 1.0a user-context credentials, as Twitter issues them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub token: String,
    pub token_secret: String,
}

impl Creds {
    /// Fixed dummy credentials shaped like real ones (access tokens are `<user id>-<random>`).
    pub fn test() -> Creds {
        Creds {
            consumer_key: "tpTestConsumerKey0000000".into(),
            consumer_secret: "tpTestConsumerSecret00000000000000000000000000".into(),
            token: "1000000001-tpTestAccessToken000000000000000000000".into(),
            token_secret: "tpTestAccessTokenSecret000000000000000000000".into(),
        }
    }
}

/// One step of a scripted `200` response. Unless noted, each action is written as its own HTTP
/// chunk, so message framing and chunk boundaries never coincide by accident.
#[derive(Clone)]
pub enum Action {
    /// One message, framed as the request asked: `<bytes>\r\n`, or with `delimited=length`
    /// `<len>\r\n<bytes>\r\n` where `len` counts `<bytes>` plus the trailing `\r\n` (Twitter's
    /// definition).
    Record(Vec<u8>),
    /// Many messages, framed like [`Action::Record`], written as fast as the client reads them and
    /// batched into ~64 KiB chunks (for benchmarks).
    Records(Arc<Vec<Vec<u8>>>),
    /// Like [`Action::Records`], over and over until the client disconnects (an endless stream for
    /// benchmarks). An empty list sends nothing.
    RecordsForever(Arc<Vec<Vec<u8>>>),
    /// One message, framed like [`Action::Record`], whose framed bytes are split across two chunks
    /// at the given offset (clamped to the framed length).
    RecordSplit(Vec<u8>, usize),
    /// A keep-alive: a blank `\r\n` line.
    KeepAlive,
    /// Bytes written as-is as one chunk (garbage, half a line, ...). Several `Raw`s in a row split
    /// one line across chunks; see [`frame`] to build correctly framed pieces. Empty sends nothing.
    Raw(Vec<u8>),
    /// Send nothing for a while, keeping the connection open.
    Sleep(Duration),
    /// Send nothing, ever, until the client closes the connection. Ends the script.
    Stall,
    /// Write a chunk header announcing more bytes than follow, send part of a message, then close
    /// the connection. Ends the script.
    DropMidChunk,
    /// On a gzip response, send only the first half of what remains of the compressed stream
    /// (final block and trailer), then end the chunked body properly: the HTTP layer looks fine
    /// and only the gzip decoder can tell. On a plain response, close without the final chunk.
    /// Ends the script.
    TruncateGzip,
    /// End the body properly (gzip trailer, then `0\r\n\r\n`) and close. Also what happens after
    /// the last action of a script that has no ending action.
    End,
}

impl fmt::Debug for Action {
    // Hand-written so that a benchmark-sized `Records` prints as a count, not megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Record(r) => f
                .debug_tuple("Record")
                .field(&String::from_utf8_lossy(r))
                .finish(),
            Action::Records(rs) => write!(f, "Records(<{} records>)", rs.len()),
            Action::RecordsForever(rs) => write!(f, "RecordsForever(<{} records>)", rs.len()),
            Action::RecordSplit(r, at) => f
                .debug_tuple("RecordSplit")
                .field(&String::from_utf8_lossy(r))
                .field(at)
                .finish(),
            Action::KeepAlive => f.write_str("KeepAlive"),
            Action::Raw(b) => f
                .debug_tuple("Raw")
                .field(&String::from_utf8_lossy(b))
                .finish(),
            Action::Sleep(d) => f.debug_tuple("Sleep").field(d).finish(),
            Action::Stall => f.write_str("Stall"),
            Action::DropMidChunk => f.write_str("DropMidChunk"),
            Action::TruncateGzip => f.write_str("TruncateGzip"),
            Action::End => f.write_str("End"),
        }
    }
}

/// What one accepted (and authenticated) connection gets.
#[derive(Clone, Debug)]
pub struct Conn {
    pub status: u16,
    /// Compress the body, if the client sent `Accept-Encoding: gzip` (otherwise it goes plain,
    /// and [`Seen::accept_gzip`] shows why).
    pub gzip: bool,
    /// The body of a `200`; ignored for any other status.
    pub actions: Vec<Action>,
    /// Body of a non-`200` response (e.g. a JSON error); a short text default when `None`.
    pub body: Option<String>,
}

impl Conn {
    pub fn ok(actions: Vec<Action>) -> Conn {
        Conn {
            status: 200,
            gzip: false,
            actions,
            body: None,
        }
    }

    /// A non-streaming response with this status (e.g. 420, 429, 503) and a default body.
    pub fn status(code: u16) -> Conn {
        Conn {
            status: code,
            gzip: false,
            actions: Vec::new(),
            body: None,
        }
    }

    pub fn gzip(self) -> Conn {
        Conn { gzip: true, ..self }
    }

    /// v2's answer when the stream already has as many connections as the account allows.
    pub fn too_many_connections() -> Conn {
        Conn {
            body: Some(
                r#"{"title":"ConnectionException","detail":"This stream is currently at the maximum allowed connection limit.","connection_issue":"TooManyConnections","type":"https://api.twitter.com/2/problems/streaming-connection"}"#
                    .into(),
            ),
            ..Conn::status(429)
        }
    }
}

/// v2's error object announcing that the server is closing the stream.
pub fn operational_disconnect() -> Vec<u8> {
    br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#.to_vec()
}

/// A rule as the stand-in stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRule {
    pub id: String,
    pub value: String,
    pub tag: Option<String>,
}

/// One request the stand-in read in full (connections that never completed a request head are
/// not recorded).
#[derive(Clone, Debug)]
pub struct Seen {
    /// When the request head had been fully read.
    pub at: Instant,
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Decoded query and form-body parameters, in that order, without `oauth_*` ones.
    pub params: Vec<(String, String)>,
    pub signature_ok: bool,
    pub accept_gzip: bool,
    /// Header names lower-cased (they are case-insensitive), values trimmed.
    pub headers: Vec<(String, String)>,
    /// Why authentication failed, when it did (the same text goes in the `401` body).
    pub auth_error: Option<String>,
    /// Which script entry this request was served, or `None` when it was rejected (401/404)
    /// without consuming one.
    pub script_index: Option<usize>,
}

impl Seen {
    /// The first parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        lookup(&self.params, name)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        lookup(&self.headers, &name.to_ascii_lowercase())
    }
}

/// A running stand-in. Dropping it stops the server and every connection it has open.
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl StandIn {
    /// Serves `script` on `127.0.0.1:<free port>`: the i-th authenticated request gets
    /// `script[i]`, and once the script is used up every further one gets its last entry again.
    ///
    /// # Panics
    /// If `script` is empty, or the port cannot be bound.
    pub async fn start(script: Vec<Conn>, creds: Creds) -> StandIn {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(any_port, script, creds)
            .await
            .expect("bind the Twitter stand-in to 127.0.0.1:0")
    }

    /// Like [`StandIn::start`], on a given address (port 0 picks a free one).
    pub async fn start_on(
        addr: SocketAddr,
        script: Vec<Conn>,
        creds: Creds,
    ) -> io::Result<StandIn> {
        assert!(
            !script.is_empty(),
            "a Twitter stand-in script needs at least one Conn"
        );
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script,
            creds,
            served: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            seen_count: watch::Sender::new(0),
            rules: Mutex::new(Vec::new()),
            next_rule_id: AtomicUsize::new(1_500_000_000_000_000_001),
            history: Mutex::new(Vec::new()),
            backfill_refused: AtomicBool::new(false),
            v2_open: AtomicUsize::new(0),
            v2_limit: AtomicUsize::new(usize::MAX),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(StandIn {
            addr,
            shared,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT/1.1/statuses/filter.json`
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, FILTER_PATH)
    }

    /// `http://127.0.0.1:PORT/2/tweets/search/stream`
    pub fn v2_url(&self) -> String {
        format!("http://{}{}", self.addr, V2_STREAM_PATH)
    }

    /// The v2 rules as they stand, in creation order.
    pub fn rules(&self) -> Vec<StoredRule> {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Adds a v2 rule directly (as if made earlier by someone else); returns its id.
    pub fn preset_rule(&self, value: &str, tag: Option<&str>) -> String {
        let id = self.shared.new_rule_id();
        self.shared
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(StoredRule {
                id: id.clone(),
                value: value.into(),
                tag: tag.map(str::to_string),
            });
        id
    }

    /// From now on, at most `n` v2 streams may be open at once; one more gets Twitter's
    /// `429 TooManyConnections` (without using up a script entry), as on an account allowing
    /// one connection.
    pub fn limit_v2_connections(&self, n: usize) {
        self.shared.v2_limit.store(n, Ordering::SeqCst);
    }

    /// From now on, answer `backfill_minutes` as Twitter does for accounts without backfill.
    pub fn refuse_backfill(&self) {
        self.shared.backfill_refused.store(true, Ordering::SeqCst);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request seen so far, in the order their heads were read.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until at least `n` requests have been seen (rejected ones included); `false` on
    /// timeout.
    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        let mut count = self.shared.seen_count.subscribe();
        let reached = tokio::time::timeout(timeout, count.wait_for(|&seen| seen >= n)).await;
        matches!(reached, Ok(Ok(_)))
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Every v2 tweet record streamed so far and when, which backfill sends again.
type History = Mutex<Vec<(Instant, Vec<u8>)>>;

struct Shared {
    script: Vec<Conn>,
    creds: Creds,
    /// Script entries handed out so far.
    served: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    seen_count: watch::Sender<usize>,
    /// v2 rule store.
    rules: Mutex<Vec<StoredRule>>,
    next_rule_id: AtomicUsize,
    history: History,
    backfill_refused: AtomicBool,
    /// v2 streams open now, and how many the "account" allows.
    v2_open: AtomicUsize,
    v2_limit: AtomicUsize,
}

/// One open v2 stream, counted until dropped.
struct OpenStream<'a>(&'a AtomicUsize);

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn new_rule_id(&self) -> String {
        self.next_rule_id.fetch_add(1, Ordering::SeqCst).to_string()
    }

    fn record(&self, seen: Seen) {
        let mut all = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        all.push(seen);
        // Published under the lock so the count never goes backwards between racing connections.
        self.seen_count.send_replace(all.len());
    }

    fn next_script_index(&self) -> usize {
        self.served.fetch_add(1, Ordering::SeqCst)
    }

    fn conn(&self, index: usize) -> &Conn {
        &self.script[index.min(self.script.len() - 1)]
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connection tasks live in this set so that aborting the accept task (on drop) also tears
    // down every connection still open, stalled ones included.
    let mut connections = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                while connections.try_join_next().is_some() {}
                connections.spawn(serve(stream, Arc::clone(&shared)));
            }
            Err(e) => {
                // Typically EMFILE under a reconnect storm: back off rather than spin.
                eprintln!("twitter stand-in: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    // Twitter delivers each message as it happens; Nagle would hold small chunks (one record, one
    // keep-alive) back behind the client's delayed ACK and distort every timing test.
    let _ = stream.set_nodelay(true);

    let request = match read_request(&mut stream).await {
        Ok(request) => request,
        Err(ReadError::Closed) => return,
        Err(ReadError::Bad(reason)) => {
            eprintln!("twitter stand-in: 400 Bad Request: {reason}");
            let _ = write_simple(&mut stream, 400, Some(&format!("{reason}\n"))).await;
            return;
        }
    };

    if request.path.starts_with("/2/") {
        return serve_v2(stream, shared, request).await;
    }

    let mut params = form_decode(&request.query);
    // RFC 5849 §3.4.1.3.1: the body takes part in the signature only when it is a form.
    if lookup(&request.headers, "content-type").is_some_and(is_form_content_type) {
        params.extend(form_decode(&String::from_utf8_lossy(&request.body)));
    }
    let auth = match lookup(&request.headers, "host") {
        None => Err("no Host header, so no base URI to check the signature against".to_string()),
        Some(host) => verify(
            &shared.creds,
            &request.method,
            &base_uri(host, &request.path),
            &params,
            lookup(&request.headers, "authorization"),
            unix_now(),
        ),
    };
    let accept_gzip = lookup(&request.headers, "accept-encoding").is_some_and(accepts_gzip);
    let length_delimited = lookup(&params, "delimited") == Some("length");
    // Rejected requests do not use up a script entry, so a test's script stays about the
    // requests that got through.
    let script_index =
        (auth.is_ok() && request.path == FILTER_PATH).then(|| shared.next_script_index());

    shared.record(Seen {
        at: request.at,
        method: request.method.clone(),
        path: request.path.clone(),
        params: params
            .iter()
            .filter(|(k, _)| !k.starts_with("oauth_"))
            .cloned()
            .collect(),
        signature_ok: auth.is_ok(),
        accept_gzip,
        headers: request.headers.clone(),
        auth_error: auth.as_ref().err().cloned(),
        script_index,
    });

    // Write errors only ever mean the client went away, which is not the server's problem.
    let _ = match (auth, script_index) {
        (Err(reason), _) => {
            write_simple(
                &mut stream,
                401,
                Some(&format!("Could not authenticate you: {reason}\n")),
            )
            .await
        }
        (Ok(()), None) => write_simple(&mut stream, 404, None).await,
        (Ok(()), Some(index)) => {
            let conn = shared.conn(index);
            respond(
                &mut stream,
                conn,
                conn.gzip && accept_gzip,
                length_delimited,
                None,
            )
            .await
        }
    };
}

// ---------------------------------------------------------------------------------------------
// API v2: bearer token, rules, the filtered stream with backfill
// ---------------------------------------------------------------------------------------------

async fn serve_v2(mut stream: TcpStream, shared: Arc<Shared>, request: Request) {
    let params = form_decode(&request.query);
    let expected = format!("Bearer {TEST_BEARER}");
    let auth = match lookup(&request.headers, "authorization") {
        None => Err("no Authorization header".to_string()),
        Some(v) if v == expected => Ok(()),
        Some(v) if !v.starts_with("Bearer ") => {
            Err("Authorization scheme is not Bearer".to_string())
        }
        Some(_) => Err("unknown bearer token".to_string()),
    };
    let accept_gzip = lookup(&request.headers, "accept-encoding").is_some_and(accepts_gzip);
    let is_stream = request.path == V2_STREAM_PATH && request.method == "GET";
    let backfill: Option<Result<u64, String>> = lookup(&params, "backfill_minutes").map(|m| {
        if shared.backfill_refused.load(Ordering::SeqCst) {
            Err("The `backfill_minutes` query parameter is not available to this account's access level.".to_string())
        } else {
            m.parse::<u64>()
                .ok()
                .filter(|m| (1..=5).contains(m))
                .ok_or(format!("The `backfill_minutes` query parameter value [{m}] is not one of [1,2,3,4,5]"))
        }
    });
    let backfill_ok = !matches!(backfill, Some(Err(_)));
    // Counted before the script is consulted: a refused connection uses no entry.
    let open = (auth.is_ok() && is_stream && backfill_ok).then(|| {
        let before = shared.v2_open.fetch_add(1, Ordering::SeqCst);
        (
            OpenStream(&shared.v2_open),
            before < shared.v2_limit.load(Ordering::SeqCst),
        )
    });
    let too_many = matches!(open, Some((_, false)));
    let script_index = matches!(open, Some((_, true))).then(|| shared.next_script_index());
    shared.record(Seen {
        at: request.at,
        method: request.method.clone(),
        path: request.path.clone(),
        params: params.clone(),
        signature_ok: auth.is_ok(),
        accept_gzip,
        headers: request.headers.clone(),
        auth_error: auth.as_ref().err().cloned(),
        script_index,
    });
    if auth.is_err() {
        let body =
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#;
        let _ = write_simple(&mut stream, 401, Some(body)).await;
        return;
    }
    let _ = match (request.path.as_str(), request.method.as_str()) {
        (V2_RULES_PATH, "GET") => {
            let rules = shared
                .rules
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let mut body = serde_json::json!({
                "meta": {"sent": "2026-01-01T00:00:00.000Z", "result_count": rules.len()}
            });
            if !rules.is_empty() {
                body["data"] = rules.iter().map(rule_json).collect();
            }
            write_simple(&mut stream, 200, Some(&body.to_string())).await
        }
        (V2_RULES_PATH, "POST") => {
            let dry_run = lookup(&params, "dry_run") == Some("true");
            let (status, body) = change_rules(&shared, &request.body, dry_run);
            write_simple(&mut stream, status, Some(&body.to_string())).await
        }
        (V2_STREAM_PATH, "GET") if too_many => {
            let conn = Conn::too_many_connections();
            write_simple(&mut stream, 429, conn.body.as_deref()).await
        }
        (V2_STREAM_PATH, "GET") => match (backfill, script_index) {
            (Some(Err(message)), _) => {
                let body = serde_json::json!({
                    "errors": [{"parameters": {"backfill_minutes": [lookup(&params, "backfill_minutes")]}, "message": message}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request"
                });
                write_simple(&mut stream, 400, Some(&body.to_string())).await
            }
            (backfill, Some(index)) => {
                let mut conn = shared.conn(index).clone();
                if let (Some(Ok(minutes)), 200) = (backfill, conn.status) {
                    // Oldest first, then the live script: what Twitter documents.
                    let since = Duration::from_secs(minutes * 60);
                    let again: Vec<Action> = shared
                        .history
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .iter()
                        .filter(|(at, _)| at.elapsed() <= since)
                        .map(|(_, r)| Action::Record(r.clone()))
                        .collect();
                    conn.actions.splice(0..0, again);
                }
                respond(
                    &mut stream,
                    &conn,
                    conn.gzip && accept_gzip,
                    false,
                    Some(&shared.history),
                )
                .await
            }
            (_, None) => write_simple(&mut stream, 500, None).await,
        },
        (V2_STREAM_PATH | V2_RULES_PATH, _) => write_simple(&mut stream, 405, None).await,
        _ => write_simple(&mut stream, 404, None).await,
    };
}

fn rule_json(r: &StoredRule) -> serde_json::Value {
    let mut v = serde_json::json!({"id": r.id, "value": r.value});
    if let Some(tag) = &r.tag {
        v["tag"] = tag.clone().into();
    }
    v
}

/// Why a rule value is invalid, in the stand-in's (much simplified) rule syntax: not empty,
/// at most 512 characters, parentheses balanced.
fn invalid_rule(value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return Some("Rules must contain a non-empty value.".into());
    }
    if value.chars().count() > 512 {
        return Some("Rules must be 512 characters or fewer.".into());
    }
    let mut depth = 0i32;
    for c in value.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            break;
        }
    }
    (depth != 0).then(|| "There are mismatched parentheses in this rule.".into())
}

/// `POST …/rules`: `{"add":[…]}` or `{"delete":{"ids":[…],"values":[…]}}`. As Twitter does,
/// an add with any invalid rule creates none of them.
fn change_rules(shared: &Shared, body: &[u8], dry_run: bool) -> (u16, serde_json::Value) {
    let invalid_request = |detail: &str| {
        (
            400,
            serde_json::json!({"title": "Invalid Request", "detail": detail, "type": "https://api.twitter.com/2/problems/invalid-request"}),
        )
    };
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(body) else {
        return invalid_request("The request body is not JSON.");
    };
    let mut rules = shared.rules.lock().unwrap_or_else(PoisonError::into_inner);
    let mut errors = Vec::new();
    let sent = "2026-01-01T00:00:00.000Z";
    if let Some(add) = req.get("add").and_then(|a| a.as_array()) {
        let mut fresh = Vec::new();
        let mut invalid = 0;
        for r in add {
            let value = r.get("value").and_then(|v| v.as_str()).unwrap_or_default();
            let tag = r.get("tag").and_then(|v| v.as_str()).map(str::to_string);
            if let Some(why) = invalid_rule(value) {
                invalid += 1;
                errors.push(serde_json::json!({"value": value, "details": [why], "title": "UnprocessableEntity", "type": "https://api.twitter.com/2/problems/invalid-rules"}));
            } else if let Some(existing) = rules.iter().find(|x| x.value == value) {
                errors.push(serde_json::json!({"value": value, "id": existing.id, "title": "DuplicateRule", "type": "https://api.twitter.com/2/problems/duplicate-rules"}));
            } else {
                fresh.push(StoredRule {
                    id: shared.new_rule_id(),
                    value: value.to_string(),
                    tag,
                });
            }
        }
        let valid = add.len() - invalid;
        let created: Vec<StoredRule> = if invalid == 0 { fresh } else { Vec::new() };
        let mut body = serde_json::json!({"meta": {"sent": sent, "summary": {
            "created": created.len(), "not_created": add.len() - created.len(),
            "valid": valid, "invalid": invalid}}});
        if !created.is_empty() {
            body["data"] = created.iter().map(rule_json).collect();
        }
        if !errors.is_empty() {
            body["errors"] = errors.into();
        }
        if !dry_run {
            rules.extend(created);
        }
        return (201, body);
    }
    if let Some(delete) = req.get("delete") {
        let list = |k: &str| -> Vec<String> {
            delete
                .get(k)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let (ids, values) = (list("ids"), list("values"));
        let mut gone = Vec::new();
        for (key, by_id) in ids
            .iter()
            .map(|i| (i, true))
            .chain(values.iter().map(|v| (v, false)))
        {
            match rules
                .iter()
                .position(|r| if by_id { &r.id == key } else { &r.value == key })
            {
                Some(at) if !gone.contains(&at) => gone.push(at),
                _ => errors.push(serde_json::json!({
                    "errors": [{"parameters": {}, "message": format!("Rule does not exist: {key}")}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request"})),
            }
        }
        let mut body = serde_json::json!({"meta": {"sent": sent, "summary": {
            "deleted": gone.len(), "not_deleted": ids.len() + values.len() - gone.len()}}});
        if !errors.is_empty() {
            body["errors"] = errors.into();
        }
        if !dry_run {
            gone.sort_unstable();
            for at in gone.into_iter().rev() {
                rules.remove(at);
            }
        }
        return (200, body);
    }
    invalid_request("The request needs an `add` or a `delete`.")
}

// ---------------------------------------------------------------------------------------------
// Request side
// ---------------------------------------------------------------------------------------------

struct Request {
    at: Instant,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

enum ReadError {
    /// The client went away before sending a whole request.
    Closed,
    /// Not a request the stand-in understands; answered with a `400`.
    Bad(String),
}

async fn read_request(stream: &mut TcpStream) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(4096);
    let mut scanned = 0;
    let head_len = loop {
        if let Some(i) = find(&buf[scanned..], b"\r\n\r\n") {
            break scanned + i;
        }
        // The terminator may straddle two reads.
        scanned = buf.len().saturating_sub(3);
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad("request head larger than 64 KiB".into()));
        }
        read_more(stream, &mut buf).await?;
    };
    let at = Instant::now();
    // Whatever came after the head is the start of the body.
    let mut body = buf.split_off(head_len + 4);

    let head = std::str::from_utf8(&buf[..head_len])
        .map_err(|_| ReadError::Bad("request head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut words = request_line.split(' ');
    let (method, target) = match (words.next(), words.next(), words.next(), words.next()) {
        (Some(m), Some(t), Some("HTTP/1.1" | "HTTP/1.0"), None)
            if !m.is_empty() && t.starts_with('/') =>
        {
            (m, t)
        }
        _ => {
            return Err(ReadError::Bad(format!(
                "malformed request line {request_line:?}"
            )))
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ReadError::Bad(format!("malformed header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }

    if lookup(&headers, "transfer-encoding").is_some() {
        return Err(ReadError::Bad(
            "the stand-in reads request bodies by Content-Length only".into(),
        ));
    }
    let body_len = match lookup(&headers, "content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ReadError::Bad(format!("bad Content-Length {v:?}")))?,
    };
    if body_len > MAX_BODY {
        return Err(ReadError::Bad("request body larger than 1 MiB".into()));
    }
    while body.len() < body_len {
        read_more(stream, &mut body).await?;
    }
    body.truncate(body_len);

    Ok(Request {
        at,
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => Err(ReadError::Closed),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn is_form_content_type(value: &str) -> bool {
    let mime = value.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Whether an `Accept-Encoding` value admits gzip (a `q=0` entry refuses it).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>() == Ok(0.0)
            })
        });
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) && !refused
    })
}

/// Decodes `application/x-www-form-urlencoded` (also used for query strings, per RFC 5849
/// §3.4.1.3.1).
pub fn form_decode(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_component(k), form_component(v))
        })
        .collect()
}

fn form_component(s: &str) -> String {
    // In forms `+` is a space; a literal plus arrives as %2B.
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// OAuth 1.0a (RFC 5849), written independently of any OAuth client crate so that it can catch
// the client's mistakes rather than share them.
// ---------------------------------------------------------------------------------------------

/// RFC 5849 §3.6 percent-encoding.
pub fn oauth_encode(s: &str) -> String {
    utf8_percent_encode(s, OAUTH_UNRESERVED).to_string()
}

/// The signature base string (RFC 5849 §3.4.1) for `params`, which must hold every signed
/// parameter, decoded: query, form body and `oauth_*` except `oauth_signature`.
pub fn signature_base_string(method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (oauth_encode(k), oauth_encode(v)))
        .collect();
    // Sorted by encoded name, then encoded value (byte order).
    encoded.sort();
    let param_string = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        oauth_encode(base_uri),
        oauth_encode(&param_string)
    )
}

/// The base64 HMAC-SHA1 signature of a request; pure, so it can be checked against Twitter's
/// documented example without any clock involved.
pub fn signature(
    method: &str,
    base_uri: &str,
    params: &[(String, String)],
    consumer_secret: &str,
    token_secret: &str,
) -> String {
    let key = format!(
        "{}&{}",
        oauth_encode(consumer_secret),
        oauth_encode(token_secret)
    );
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(signature_base_string(method, base_uri, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks an `Authorization: OAuth ...` header the way Twitter does. `request_params` are the
/// decoded query and form-body parameters; `now_unix` is the server clock in seconds.
pub fn verify(
    creds: &Creds,
    method: &str,
    base_uri: &str,
    request_params: &[(String, String)],
    authorization: Option<&str>,
    now_unix: u64,
) -> Result<(), String> {
    let authorization = authorization.ok_or("no Authorization header")?;
    let oauth = parse_oauth_header(authorization)?;
    let required = |name: &str| required(&oauth, name);

    if required("oauth_consumer_key")? != creds.consumer_key {
        return Err("unknown oauth_consumer_key".into());
    }
    if required("oauth_token")? != creds.token {
        return Err("unknown oauth_token".into());
    }
    let method_name = required("oauth_signature_method")?;
    if method_name != "HMAC-SHA1" {
        return Err(format!(
            "oauth_signature_method is {method_name:?}, not \"HMAC-SHA1\""
        ));
    }
    match single(&oauth, "oauth_version")? {
        None | Some("1.0") => {}
        Some(other) => return Err(format!("oauth_version is {other:?}, not \"1.0\"")),
    }
    if required("oauth_nonce")?.is_empty() {
        return Err("oauth_nonce is empty".into());
    }
    let timestamp = required("oauth_timestamp")?;
    let timestamp: u64 = timestamp
        .parse()
        .map_err(|_| format!("oauth_timestamp {timestamp:?} is not a number"))?;
    if timestamp.abs_diff(now_unix) > TIMESTAMP_WINDOW_SECS {
        return Err(format!("oauth_timestamp {timestamp} is more than {TIMESTAMP_WINDOW_SECS} s from now ({now_unix})"));
    }

    let claimed = required("oauth_signature")?;
    let mut signed: Vec<(String, String)> = request_params.to_vec();
    signed.extend(
        oauth
            .iter()
            .filter(|(k, _)| k != "oauth_signature")
            .cloned(),
    );
    let expected = signature(
        method,
        base_uri,
        &signed,
        &creds.consumer_secret,
        &creds.token_secret,
    );
    if claimed != expected {
        // The base string is what a client author needs to find the difference.
        return Err(format!(
            "oauth_signature does not match; expected base string {:?}",
            signature_base_string(method, base_uri, &signed)
        ));
    }
    Ok(())
}

/// Parses `OAuth k="v", k2="v2"` into decoded pairs, without `realm` (RFC 5849 §3.5.1).
fn parse_oauth_header(value: &str) -> Result<Vec<(String, String)>, String> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return Err(format!("Authorization scheme is {scheme:?}, not OAuth"));
    }
    let mut pairs = Vec::new();
    // Values are percent-encoded, so a comma can only be a separator.
    for item in rest
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (name, quoted) = item
            .split_once('=')
            .ok_or_else(|| format!("malformed OAuth parameter {item:?}"))?;
        let raw = quoted
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| format!("OAuth parameter {item:?} is not quoted"))?;
        let name = percent_decode_str(name.trim())
            .decode_utf8_lossy()
            .into_owned();
        if name != "realm" {
            pairs.push((
                name,
                percent_decode_str(raw).decode_utf8_lossy().into_owned(),
            ));
        }
    }
    Ok(pairs)
}

/// The value of a parameter that must not be repeated.
fn single<'a>(pairs: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, String> {
    let mut values = pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("{name} appears more than once"));
    }
    Ok(first)
}

/// The value of a parameter that must appear exactly once.
fn required<'a>(pairs: &'a [(String, String)], name: &str) -> Result<&'a str, String> {
    single(pairs, name)?.ok_or_else(|| format!("{name} is missing"))
}

/// The base string URI as the client addressed us (RFC 5849 §3.4.1.2): `http`, lower-case host,
/// port kept unless it is the default 80.
fn base_uri(host_header: &str, path: &str) -> String {
    let host = host_header.to_ascii_lowercase();
    let host = host.strip_suffix(":80").unwrap_or(&host);
    format!("http://{host}{path}")
}

/// Builds a valid `Authorization` header, for tests that talk to the stand-in without the real
/// client. `request_params` are the decoded query and form-body parameters.
pub fn authorization_header(
    creds: &Creds,
    method: &str,
    base_uri: &str,
    request_params: &[(String, String)],
    timestamp: u64,
    nonce: &str,
) -> String {
    let mut oauth: Vec<(String, String)> = [
        ("oauth_consumer_key", creds.consumer_key.as_str()),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", &timestamp.to_string()),
        ("oauth_token", creds.token.as_str()),
        ("oauth_version", "1.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut signed = request_params.to_vec();
    signed.extend(oauth.iter().cloned());
    let sig = signature(
        method,
        base_uri,
        &signed,
        &creds.consumer_secret,
        &creds.token_secret,
    );
    oauth.push(("oauth_signature".into(), sig));
    oauth.sort();
    let fields: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", oauth_encode(v)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------------------------
// Response side
// ---------------------------------------------------------------------------------------------

/// One message framed the way the stream sends it (see [`Action::Record`]); handy for building
/// [`Action::Raw`] pieces.
pub fn frame(record: &[u8], length_delimited: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + 16);
    frame_into(&mut out, record, length_delimited);
    out
}

fn frame_into(out: &mut Vec<u8>, record: &[u8], length_delimited: bool) {
    if length_delimited {
        // Twitter's length covers the message and the "\r\n" that ends it.
        write!(out, "{}\r\n", record.len() + 2).expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(record);
    out.extend_from_slice(b"\r\n");
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        416 => "Range Unacceptable",
        420 => "Enhance Your Calm",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A complete non-streaming response, then close.
async fn write_simple(stream: &mut TcpStream, status: u16, body: Option<&str>) -> io::Result<()> {
    let reason = reason_phrase(status);
    let body = body.map_or_else(|| format!("{status} {reason}\n"), str::to_owned);
    let content_type = if body.trim_start().starts_with(['{', '[']) {
        "application/json"
    } else {
        "text/plain"
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// `history`: on the v2 stream, where each tweet record sent is logged for backfill.
async fn respond(
    stream: &mut TcpStream,
    conn: &Conn,
    gzip: bool,
    length_delimited: bool,
    history: Option<&History>,
) -> io::Result<()> {
    if conn.status != 200 {
        return write_simple(stream, conn.status, conn.body.as_deref()).await;
    }
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
    );
    if gzip {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;

    let mut body = ChunkedBody {
        stream,
        // Level 1: the benchmark stand-in must out-run the client's decompression on the same
        // machine, and level 1 still shrinks tweet JSON several-fold.
        gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
        length_delimited,
        wire: Vec::new(),
    };
    for action in &conn.actions {
        match action {
            Action::Record(record) => {
                body.send(&frame(record, length_delimited)).await?;
                if let Some(h) = history.filter(|_| record.starts_with(b"{\"data\"")) {
                    let mut h = h.lock().unwrap_or_else(PoisonError::into_inner);
                    // A tweet sent again by backfill keeps its first time, as on Twitter.
                    if !h.iter().any(|(_, r)| r == record) {
                        h.push((Instant::now(), record.clone()));
                    }
                }
            }
            Action::Records(records) => body.send_records(records, Some(1)).await?,
            Action::RecordsForever(records) => body.send_records(records, None).await?,
            Action::RecordSplit(record, at) => {
                let framed = frame(record, length_delimited);
                let (first, second) = framed.split_at((*at).min(framed.len()));
                body.send(first).await?;
                body.send(second).await?;
            }
            Action::KeepAlive => body.send(b"\r\n").await?,
            Action::Raw(bytes) => body.send(bytes).await?,
            Action::Sleep(pause) => tokio::time::sleep(*pause).await,
            Action::Stall => return body.stall().await,
            Action::DropMidChunk => return body.drop_mid_chunk().await,
            Action::TruncateGzip => return body.truncate_gzip().await,
            Action::End => return body.end().await,
        }
    }
    body.end().await
}

/// The chunked (and possibly gzip-compressed) body of a `200`.
struct ChunkedBody<'a> {
    stream: &'a mut TcpStream,
    gzip: Option<GzEncoder<Vec<u8>>>,
    length_delimited: bool,
    /// Reused buffer holding one chunk as it goes on the wire.
    wire: Vec<u8>,
}

impl ChunkedBody<'_> {
    /// Sends `plain` (compressed, on a gzip response) as exactly one chunk.
    async fn send(&mut self, plain: &[u8]) -> io::Result<()> {
        if plain.is_empty() {
            return Ok(());
        }
        match &mut self.gzip {
            Some(encoder) => {
                let compressed = Self::compress(encoder, plain)?;
                self.write_chunk(&compressed).await
            }
            None => self.write_chunk(plain).await,
        }
    }

    fn compress(encoder: &mut GzEncoder<Vec<u8>>, plain: &[u8]) -> io::Result<Vec<u8>> {
        encoder.write_all(plain)?;
        // flush() is a zlib sync flush: everything so far becomes decodable by the client now,
        // as Twitter's gzip stream is, instead of whenever the compressor's window fills.
        encoder.flush()?;
        Ok(std::mem::take(encoder.get_mut()))
    }

    async fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        write_chunk(self.stream, &mut self.wire, data).await
    }

    /// `passes: None` repeats until the client goes away.
    async fn send_records(&mut self, records: &[Vec<u8>], passes: Option<u64>) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.gzip.is_none() && !self.length_delimited {
            return self.send_records_vectored(records, passes).await;
        }
        let mut batch = Vec::with_capacity(RECORDS_CHUNK + 4096);
        let mut pass = 0;
        while passes.is_none_or(|n| pass < n) {
            for record in records {
                frame_into(&mut batch, record, self.length_delimited);
                if batch.len() >= RECORDS_CHUNK {
                    self.send(&batch).await?;
                    batch.clear();
                }
            }
            pass += 1;
        }
        self.send(&batch).await
    }

    /// [`Self::send_records`] for a plain response, without copying a byte in user space: each
    /// ~64 KiB chunk goes out in one `writev` straight from the records. The benchmark runs the
    /// stand-in on the same two cores as tweetpipe and the broker, so every copy it saves is CPU
    /// left to what is measured (copying each chunk twice cost it about 0.1 s of CPU per
    /// 100,000 tweets).
    async fn send_records_vectored(
        &mut self,
        records: &[Vec<u8>],
        passes: Option<u64>,
    ) -> io::Result<()> {
        let mut pass = 0;
        while passes.is_none_or(|n| pass < n) {
            let mut start = 0;
            while start < records.len() {
                // As many whole records as fit in a chunk; a larger record is a chunk alone.
                let (mut end, mut size) = (start, 0);
                while end < records.len()
                    && (size == 0 || size + records[end].len() + 2 <= RECORDS_CHUNK)
                {
                    size += records[end].len() + 2;
                    end += 1;
                }
                let head = format!("{size:x}\r\n");
                let mut slices = Vec::with_capacity(2 * (end - start) + 2);
                slices.push(IoSlice::new(head.as_bytes()));
                for record in &records[start..end] {
                    slices.push(IoSlice::new(record));
                    slices.push(IoSlice::new(b"\r\n"));
                }
                slices.push(IoSlice::new(b"\r\n"));
                write_all_vectored(self.stream, &mut slices).await?;
                start = end;
            }
            pass += 1;
        }
        Ok(())
    }

    async fn stall(self) -> io::Result<()> {
        // Anything the client sends is discarded; end-of-file or a reset means it gave up.
        let mut sink = [0u8; 1024];
        loop {
            match self.stream.read(&mut sink).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    }

    async fn drop_mid_chunk(mut self) -> io::Result<()> {
        const PARTIAL: &[u8] = br#"{"created_at":"Thu Apr 06 15:24:15 +0000 2017","id":850006245121695744,"id_str":"850006245121695744","text":"this message is cut off mid-ch"#;
        let data = match &mut self.gzip {
            Some(encoder) => Self::compress(encoder, PARTIAL)?,
            None => PARTIAL.to_vec(),
        };
        // Announce more than follows, so the chunk is provably unfinished when the line goes.
        let mut wire = format!("{:x}\r\n", data.len() + 512).into_bytes();
        wire.extend_from_slice(&data);
        self.stream.write_all(&wire).await?;
        // A FIN, not a RST: on a reset, the client's kernel may throw away data the client had not
        // read yet, and tests would race over how many earlier records survive.
        self.stream.shutdown().await
    }

    async fn truncate_gzip(mut self) -> io::Result<()> {
        if let Some(encoder) = self.gzip.take() {
            let rest = encoder.finish()?;
            self.write_chunk(&rest[..rest.len() / 2]).await?;
            self.stream.write_all(b"0\r\n\r\n").await?;
        }
        self.stream.shutdown().await
    }

    async fn end(mut self) -> io::Result<()> {
        if let Some(encoder) = self.gzip.take() {
            let rest = encoder.finish()?;
            self.write_chunk(&rest).await?;
        }
        self.stream.write_all(b"0\r\n\r\n").await?;
        self.stream.shutdown().await
    }
}

async fn write_all_vectored(
    stream: &mut TcpStream,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !slices.is_empty() {
        let n = stream.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

async fn write_chunk(stream: &mut TcpStream, wire: &mut Vec<u8>, data: &[u8]) -> io::Result<()> {
    // A zero-length chunk would end the body, so "nothing to send" must send nothing.
    if data.is_empty() {
        return Ok(());
    }
    wire.clear();
    write!(wire, "{:x}\r\n", data.len())?;
    wire.extend_from_slice(data);
    wire.extend_from_slice(b"\r\n");
    // One write per chunk, so that with TCP_NODELAY a chunk leaves as one unit.
    stream.write_all(wire).await
}

#[cfg(test)]
mod tests {
    use super::*;

    // Twitter's "Creating a signature" worked example.
    const DOC_CONSUMER_KEY: &str = "xvz1evFS4wEEPTGEFPHBog";
    const DOC_CONSUMER_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
    const DOC_TOKEN: &str = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb";
    const DOC_TOKEN_SECRET: &str = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE";
    const DOC_NONCE: &str = "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg";
    const DOC_TIMESTAMP: u64 = 1318622958;
    const DOC_URI: &str = "https://api.twitter.com/1.1/statuses/update.json";
    const DOC_SIGNATURE: &str = "hCtSmYh+iHYCEqBWrE7C7hYmtUk=";

    fn doc_creds() -> Creds {
        Creds {
            consumer_key: DOC_CONSUMER_KEY.into(),
            consumer_secret: DOC_CONSUMER_SECRET.into(),
            token: DOC_TOKEN.into(),
            token_secret: DOC_TOKEN_SECRET.into(),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The request's own parameters, decoded exactly as the server decodes them from the wire.
    fn doc_request_params() -> Vec<(String, String)> {
        let mut params = form_decode("include_entities=true");
        params.extend(form_decode(
            "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
        ));
        params
    }

    fn doc_oauth_params() -> Vec<(String, String)> {
        pairs(&[
            ("oauth_consumer_key", DOC_CONSUMER_KEY),
            ("oauth_nonce", DOC_NONCE),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            ("oauth_token", DOC_TOKEN),
            ("oauth_version", "1.0"),
        ])
    }

    fn doc_header(signature: &str) -> String {
        format!(
            "OAuth oauth_consumer_key=\"{DOC_CONSUMER_KEY}\", oauth_nonce=\"{DOC_NONCE}\", \
             oauth_signature=\"{}\", oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"{DOC_TIMESTAMP}\", oauth_token=\"{DOC_TOKEN}\", oauth_version=\"1.0\"",
            oauth_encode(signature)
        )
    }

    #[test]
    fn signature_matches_twitters_worked_example() {
        let mut params = doc_request_params();
        assert_eq!(
            lookup(&params, "status"),
            Some("Hello Ladies + Gentlemen, a signed OAuth request!")
        );
        params.extend(doc_oauth_params());

        assert_eq!(
            signature_base_string("POST", DOC_URI, &params),
            "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue\
             %26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\
             %26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958\
             %26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0\
             %26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"
        );
        assert_eq!(
            signature(
                "POST",
                DOC_URI,
                &params,
                DOC_CONSUMER_SECRET,
                DOC_TOKEN_SECRET
            ),
            DOC_SIGNATURE
        );
        // The same page, in its API v1 days, signed the /1/ URL; a second independent data point.
        let v1 = "https://api.twitter.com/1/statuses/update.json";
        assert_eq!(
            signature("POST", v1, &params, DOC_CONSUMER_SECRET, DOC_TOKEN_SECRET),
            "tnnArxj06cWHq44gCs1OSKk/jLY="
        );
    }

    #[test]
    fn verifier_accepts_the_documented_header_and_only_it() {
        let creds = doc_creds();
        let params = doc_request_params();
        let header = doc_header(DOC_SIGNATURE);
        let check =
            |creds: &Creds, uri: &str, params: &[(String, String)], header: &str, now: u64| {
                verify(creds, "POST", uri, params, Some(header), now)
            };

        assert_eq!(
            check(&creds, DOC_URI, &params, &header, DOC_TIMESTAMP),
            Ok(())
        );
        assert_eq!(
            check(&creds, DOC_URI, &params, &header, DOC_TIMESTAMP + 300),
            Ok(())
        );
        assert!(
            check(&creds, DOC_URI, &params, &header, DOC_TIMESTAMP + 301)
                .unwrap_err()
                .contains("oauth_timestamp")
        );
        assert!(check(&creds, DOC_URI, &params, &header, DOC_TIMESTAMP - 301).is_err());

        let tampered = pairs(&[
            ("include_entities", "false"),
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
        ]);
        assert!(check(&creds, DOC_URI, &tampered, &header, DOC_TIMESTAMP)
            .unwrap_err()
            .contains("base string"));
        assert!(check(
            &creds,
            "http://api.twitter.com/1.1/statuses/update.json",
            &params,
            &header,
            DOC_TIMESTAMP
        )
        .is_err());
        assert!(check(
            &creds,
            DOC_URI,
            &params,
            &doc_header("tnnArxj06cWHq44gCs1OSKk/jLY="),
            DOC_TIMESTAMP
        )
        .is_err());

        let wrong_secret = Creds {
            token_secret: "x".into(),
            ..doc_creds()
        };
        assert!(check(&wrong_secret, DOC_URI, &params, &header, DOC_TIMESTAMP).is_err());
        let wrong_key = Creds {
            consumer_key: "someone-else".into(),
            ..doc_creds()
        };
        assert_eq!(
            check(&wrong_key, DOC_URI, &params, &header, DOC_TIMESTAMP),
            Err("unknown oauth_consumer_key".into())
        );
        let wrong_token = Creds {
            token: "1-other".into(),
            ..doc_creds()
        };
        assert_eq!(
            check(&wrong_token, DOC_URI, &params, &header, DOC_TIMESTAMP),
            Err("unknown oauth_token".into())
        );

        let plaintext = header.replace("HMAC-SHA1", "PLAINTEXT");
        assert!(check(&creds, DOC_URI, &params, &plaintext, DOC_TIMESTAMP)
            .unwrap_err()
            .contains("oauth_signature_method"));
        let version = header.replace("oauth_version=\"1.0\"", "oauth_version=\"2.0\"");
        assert!(check(&creds, DOC_URI, &params, &version, DOC_TIMESTAMP)
            .unwrap_err()
            .contains("oauth_version"));
        assert!(verify(&creds, "POST", DOC_URI, &params, None, DOC_TIMESTAMP).is_err());
        assert!(check(&creds, DOC_URI, &params, "Bearer abc", DOC_TIMESTAMP).is_err());
    }

    #[test]
    fn verifier_treats_oauth_version_as_optional_and_realm_as_unsigned() {
        let creds = doc_creds();
        let params = doc_request_params();
        // Signed without oauth_version, as RFC 5849 allows.
        let mut signed = params.clone();
        signed.extend(
            doc_oauth_params()
                .into_iter()
                .filter(|(k, _)| k != "oauth_version"),
        );
        let sig = signature(
            "POST",
            DOC_URI,
            &signed,
            DOC_CONSUMER_SECRET,
            DOC_TOKEN_SECRET,
        );
        let header = format!(
            "oauth realm=\"Example\",{}",
            doc_header(&sig)
                .trim_start_matches("OAuth ")
                .replace(", oauth_version=\"1.0\"", "")
        );
        assert_eq!(
            verify(
                &creds,
                "POST",
                DOC_URI,
                &params,
                Some(&header),
                DOC_TIMESTAMP
            ),
            Ok(())
        );
    }

    #[test]
    fn own_signer_round_trips_through_the_verifier() {
        let creds = Creds::test();
        let uri = "http://127.0.0.1:40000/1.1/statuses/filter.json";
        let params = pairs(&[
            ("track", "rust,café ☕"),
            ("stall_warnings", "true"),
            ("delimited", "length"),
        ]);
        let header = authorization_header(&creds, "POST", uri, &params, 1_700_000_000, "abc123");
        assert_eq!(
            verify(&creds, "POST", uri, &params, Some(&header), 1_700_000_100),
            Ok(())
        );
        assert!(verify(&creds, "GET", uri, &params, Some(&header), 1_700_000_100).is_err());
    }

    #[test]
    fn request_helpers() {
        assert_eq!(
            base_uri("127.0.0.1:8080", FILTER_PATH),
            "http://127.0.0.1:8080/1.1/statuses/filter.json"
        );
        assert_eq!(
            base_uri("Stream.Twitter.COM:80", FILTER_PATH),
            "http://stream.twitter.com/1.1/statuses/filter.json"
        );
        assert!(accepts_gzip("deflate, gzip"));
        assert!(accepts_gzip("GZIP;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert_eq!(
            form_decode("track=a+b%2Bc&x&y="),
            pairs(&[("track", "a b+c"), ("x", ""), ("y", "")])
        );
        assert_eq!(frame(b"{}", true), b"4\r\n{}\r\n");
        assert_eq!(frame(b"{}", false), b"{}\r\n");
        assert_eq!(reason_phrase(420), "Enhance Your Calm");
    }
}
