//! A local Jetstream stand-in: a WebSocket server that behaves like Jetstream's v1
//! `/subscribe` endpoint, faults included, for tests and the benchmark.
//!
//! What it does as Jetstream does (from Jetstream's server code):
//! - serves a log of events in order; `cursor=<time_us>` starts at the first event whose
//!   `time_us` is at or after it (a cursor past the newest event, or none: the live tip), and
//!   a cursor older than what it keeps silently starts at the oldest it keeps;
//! - `wantedCollections` (full NSIDs and `prefix.*`) filters commits only: identity and
//!   account events always pass; `wantedDids` filters every kind;
//! - `compress=true`: binary frames, each one zstd frame made with Jetstream's dictionary
//!   (see [`super::zstd_dict`]); otherwise text frames;
//! - `maxMessageSizeBytes`: events larger than it (uncompressed) are skipped;
//! - `requireHello=true`: nothing is sent until the client's `options_update` message, whose
//!   filter replaces the query's;
//! - new events pushed while clients are connected reach them live; pings are answered.
//!
//! Faults, set through [`Standin::faults`]: answer the upgrade with HTTP statuses, drop the
//! connection (no close frame) or close it with a code after some events, go silent (accept,
//! then never read or write, so pings go unanswered), send a damaged zstd frame, ignore
//! `maxMessageSizeBytes`.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::zstd_dict::DictEncoder;

/// Jetstream's dictionary, from the tree.
pub fn dictionary() -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/source/jetstream/dictionary/legacy_subscribe.zdict"),
    )
    .expect("the bundled Jetstream dictionary")
}

/// The 152 real events, one `Bytes` each.
pub fn real_events() -> Vec<Bytes> {
    let text = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/jetstream/events_v1.jsonl"),
    )
    .expect("tests/data/jetstream/events_v1.jsonl");
    text.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(Bytes::copy_from_slice)
        .collect()
}

/// `n` synthetic events made from the real ones: each its own account (`did`), `time_us`
/// from `first_time_us` in steps of `step_us`, so every event has its own identity and the
/// cursor order is exact. Same shapes, texts and sizes as the real events.
pub fn synthetic_events(n: usize, first_time_us: i64, step_us: i64) -> Vec<Bytes> {
    let real = real_events();
    (0..n)
        .map(|i| synthetic(&real[i % real.len()], i, first_time_us + i as i64 * step_us))
        .collect()
}

/// A real event with its `did` and `time_us` replaced (`{"did":"…","time_us":…,` comes first
/// in every Jetstream event).
fn synthetic(template: &[u8], i: usize, time_us: i64) -> Bytes {
    let mut v = synthetic_prefix(i, time_us).into_bytes();
    v.extend_from_slice(template_tail(template));
    Bytes::from(v)
}

/// What a synthetic event has of its own: `{"did":"…","time_us":…`.
fn synthetic_prefix(i: usize, time_us: i64) -> String {
    format!("{{\"did\":\"{}\",\"time_us\":{time_us}", synthetic_did(i))
}

/// What it has of its template: everything after the template's `time_us` value.
fn template_tail(template: &[u8]) -> &[u8] {
    let s = std::str::from_utf8(template).unwrap();
    let after_time = s.find("\"time_us\":").unwrap() + "\"time_us\":".len();
    let rest = &s[after_time..];
    &rest.as_bytes()[rest.find(',').unwrap()..]
}

fn synthetic_did(i: usize) -> String {
    format!("did:plc:standin{i:017}")
}

/// One event of the log, with what the filters look at.
#[derive(Debug, Clone)]
pub struct Event {
    pub json: Bytes,
    pub time_us: i64,
    pub did: String,
    /// `commit.collection` of a commit; `None` for other kinds (they pass collection filters).
    pub collection: Option<String>,
    /// Its compressed frame, when made ahead (synthetic events).
    pub frame: Option<Bytes>,
}

impl Event {
    /// Reads the fields the stand-in needs; anything else (a deliberately broken event) is
    /// served as is, to everyone.
    pub fn new(json: Bytes) -> Event {
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
        Event {
            time_us: v["time_us"].as_i64().unwrap_or(0),
            did: v["did"].as_str().unwrap_or_default().to_string(),
            collection: (v["kind"] == "commit")
                .then(|| v["commit"]["collection"].as_str().map(str::to_string))
                .flatten(),
            json,
            frame: None,
        }
    }
}

/// Faults to inject; each fires as described and then clears itself unless said otherwise.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next upgrade attempts are answered with these statuses and bodies, in order.
    pub http: Vec<(u16, String)>,
    /// Drop the next connection (no close frame) after it sent this many events.
    pub drop_after: Option<usize>,
    /// Close the next connection with this code after it sent this many events.
    pub close_after: Option<(usize, u16, String)>,
    /// Accept connections and then neither read nor write (stays until cleared).
    pub silent: bool,
    /// On a compressed connection, replace the frame of the event at this log index with a
    /// damaged one, once.
    pub bad_frame_at: Option<usize>,
    /// Send events over `maxMessageSizeBytes` anyway (stays until cleared).
    pub ignore_max_message_size: bool,
}

/// What a client asked for.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query of the upgrade request.
    pub target: String,
    /// The `options_update` message, in hello mode.
    pub hello: Option<String>,
}

impl Seen {
    /// The values of a query parameter.
    pub fn params(&self, name: &str) -> Vec<String> {
        let query = self.target.split_once('?').map_or("", |(_, q)| q);
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect()
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.params(name).into_iter().next()
    }
}

/// The events served: stored ones (tests), or made on demand (the benchmark's millions).
enum Log {
    Stored(Vec<Event>),
    Synthetic {
        templates: Vec<Event>,
        /// Each template's tail, compressed once (see [`DictEncoder::compress_tail`]).
        tails: Vec<super::zstd_dict::Tail>,
        count: usize,
        first_time_us: i64,
        step_us: i64,
    },
}

impl Log {
    fn len(&self) -> usize {
        match self {
            Log::Stored(v) => v.len(),
            Log::Synthetic { count, .. } => *count,
        }
    }

    fn get(&self, i: usize, encoder: &DictEncoder) -> Event {
        match self {
            Log::Stored(v) => v[i].clone(),
            Log::Synthetic {
                templates,
                tails,
                first_time_us,
                step_us,
                ..
            } => {
                let t = &templates[i % templates.len()];
                let time_us = first_time_us + i as i64 * step_us;
                let prefix = synthetic_prefix(i, time_us);
                let json = synthetic(&t.json, i, time_us);
                Event {
                    did: synthetic_did(i),
                    time_us,
                    collection: t.collection.clone(),
                    frame: encoder
                        .frame_with_tail(prefix.as_bytes(), &tails[i % templates.len()])
                        .map(Bytes::from),
                    json,
                }
            }
        }
    }

    /// The first event at or after `cursor` (the live tip if none).
    fn start(&self, cursor: i64) -> usize {
        match self {
            Log::Stored(v) => v
                .iter()
                .position(|e| e.time_us >= cursor)
                .unwrap_or(v.len()),
            Log::Synthetic {
                count,
                first_time_us,
                step_us,
                ..
            } => {
                let after = (cursor - first_time_us).max(0);
                (((after + step_us - 1) / step_us) as usize).min(*count)
            }
        }
    }
}

struct Inner {
    log: Mutex<Log>,
    /// Events before this index are no longer kept (retention).
    floor: Mutex<usize>,
    appended: Notify,
    faults: Mutex<Faults>,
    seen: Mutex<Vec<Seen>>,
    encoder: DictEncoder,
    /// Events sent per second per connection; 0: as fast as the socket takes them.
    rate: Mutex<u64>,
    /// Frames sent, all connections.
    sent: std::sync::atomic::AtomicU64,
}

/// A running stand-in; stops when dropped.
pub struct Standin {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Standin {
    /// Serves `events` (more can be pushed later) on a free loopback port.
    pub async fn start(events: Vec<Bytes>) -> Standin {
        Standin::start_on("127.0.0.1:0".parse().unwrap(), events).await
    }

    pub async fn start_on(addr: SocketAddr, events: Vec<Bytes>) -> Standin {
        Standin::start_with(addr, events, None).await
    }

    /// Serves over TLS (`wss://`) with this server configuration.
    pub async fn start_tls(events: Vec<Bytes>, tls: Arc<rustls::ServerConfig>) -> Standin {
        Standin::start_with("127.0.0.1:0".parse().unwrap(), events, Some(tls)).await
    }

    async fn start_with(
        addr: SocketAddr,
        events: Vec<Bytes>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Standin {
        let listener = TcpListener::bind(addr).await.expect("bind the stand-in");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            log: Mutex::new(Log::Stored(events.into_iter().map(Event::new).collect())),
            floor: Mutex::new(0),
            appended: Notify::new(),
            faults: Mutex::new(Faults::default()),
            seen: Mutex::new(Vec::new()),
            encoder: DictEncoder::new(&dictionary()),
            rate: Mutex::new(0),
            sent: Default::default(),
        });
        let serving = inner.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                match &tls {
                    None => {
                        connections.spawn(serve(serving.clone(), stream));
                    }
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                        let serving = serving.clone();
                        connections.spawn(async move {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(serving, stream).await;
                            }
                        });
                    }
                }
                while connections.try_join_next().is_some() {}
            }
        });
        Standin { addr, inner, task }
    }

    /// `ws://127.0.0.1:PORT/subscribe`.
    pub fn url(&self) -> String {
        format!("ws://{}/subscribe", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends events; connected clients that are caught up get them at once.
    pub fn push(&self, events: impl IntoIterator<Item = Bytes>) {
        match &mut *self.inner.log.lock().unwrap() {
            Log::Stored(v) => v.extend(events.into_iter().map(Event::new)),
            Log::Synthetic { .. } => panic!("a synthetic log takes no pushes"),
        }
        self.inner.appended.notify_waiters();
    }

    /// Serves `count` synthetic events (see [`synthetic_events`]) made as they are sent, so
    /// that millions cost no memory.
    pub fn serve_synthetic(&self, count: usize, first_time_us: i64, step_us: i64) {
        let templates: Vec<Event> = real_events().into_iter().map(Event::new).collect();
        let prefix_len = synthetic_prefix(0, first_time_us).len();
        let tails = templates
            .iter()
            .map(|t| {
                self.inner
                    .encoder
                    .compress_tail(prefix_len, template_tail(&t.json))
            })
            .collect();
        *self.inner.log.lock().unwrap() = Log::Synthetic {
            templates,
            tails,
            count,
            first_time_us,
            step_us,
        };
        self.inner.appended.notify_waiters();
    }

    /// Forgets the events before `index`: a cursor older than the event there starts there.
    pub fn forget_before(&self, index: usize) {
        *self.inner.floor.lock().unwrap() = index;
    }

    pub fn set_rate(&self, events_per_s: u64) {
        *self.inner.rate.lock().unwrap() = events_per_s;
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.inner.faults.lock().unwrap()
    }

    /// Every upgrade request so far (including refused ones).
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// Frames sent so far, all connections together.
    pub fn sent(&self) -> u64 {
        self.inner.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `n` upgrade requests were seen.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.seen().len() < n {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// A subscription's filter, from the query or an `options_update`.
#[derive(Debug, Default, Clone)]
struct Filter {
    collections: Vec<String>,
    dids: HashSet<String>,
    max_message_bytes: usize,
}

impl Filter {
    fn wants(&self, e: &Event) -> bool {
        if !self.dids.is_empty() && !self.dids.contains(&e.did) {
            return false;
        }
        let Some(c) = &e.collection else {
            return true;
        };
        self.collections.is_empty()
            || self.collections.iter().any(|w| match w.strip_suffix('*') {
                Some(prefix) => c.starts_with(prefix),
                None => w == c,
            })
    }
}

async fn serve<S>(inner: Arc<Inner>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let target = Arc::new(Mutex::new(String::new()));
    let refused = Arc::new(Mutex::new(None));
    let (t, r, i) = (target.clone(), refused.clone(), inner.clone());
    // The shape tungstenite's handshake callback has to have.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        *t.lock().unwrap() = path.clone();
        let mut faults = i.faults.lock().unwrap();
        let status = (!faults.http.is_empty()).then(|| faults.http.remove(0));
        drop(faults);
        if !req.uri().path().ends_with("/subscribe") {
            return Err(http_error(404, "404 page not found\n"));
        }
        if let Some((status, body)) = status {
            *r.lock().unwrap() = Some(status);
            return Err(http_error(status, &body));
        }
        Ok(resp)
    };
    let accepted = tokio_tungstenite::accept_hdr_async(stream, callback).await;
    let target = target.lock().unwrap().clone();
    let mut seen = Seen {
        target,
        hello: None,
    };
    let Ok(ws) = accepted else {
        inner.seen.lock().unwrap().push(seen);
        return;
    };
    let query = Seen {
        target: seen.target.clone(),
        hello: None,
    };
    let mut filter = Filter {
        collections: query.params("wantedCollections"),
        dids: query.params("wantedDids").into_iter().collect(),
        max_message_bytes: query
            .param("maxMessageSizeBytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    let compress = query.param("compress").as_deref() == Some("true");
    let cursor: Option<i64> = query.param("cursor").and_then(|c| c.parse().ok());
    let hello = query.param("requireHello").as_deref() == Some("true");
    if inner.faults.lock().unwrap().silent {
        inner.seen.lock().unwrap().push(seen);
        // Neither read nor write: pings go unanswered, as on a dead path.
        let _held = ws;
        tokio::time::sleep(Duration::from_secs(600)).await;
        return;
    }
    let (mut tx, mut rx) = ws.split();
    if hello {
        let first = tokio::time::timeout(Duration::from_secs(10), rx.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = first else {
            inner.seen.lock().unwrap().push(seen);
            return;
        };
        seen.hello = Some(text.to_string());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let list = |k: &str| -> Vec<String> {
            v["payload"][k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        filter = Filter {
            collections: list("wantedCollections"),
            dids: list("wantedDids").into_iter().collect(),
            max_message_bytes: v["payload"]["maxMessageSizeBytes"].as_u64().unwrap_or(0) as usize,
        };
    }
    inner.seen.lock().unwrap().push(seen);
    // Reading answers pings (and notices the client leaving).
    let (gone_tx, mut gone) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(_)) = rx.next().await {}
        let _ = gone_tx.send(());
    });
    // Both halves must go for the socket to close: returning ends the reader too.
    let _reader = AbortOnDrop(reader.abort_handle());

    let mut next = {
        let log = inner.log.lock().unwrap();
        let floor = *inner.floor.lock().unwrap();
        match cursor {
            None => log.len(),
            Some(c) => log.start(c).max(floor),
        }
    };
    let mut sent_here = 0usize;
    let started = tokio::time::Instant::now();
    loop {
        let appended = inner.appended.notified();
        let batch: Vec<(usize, Event)> = {
            let log = inner.log.lock().unwrap();
            let end = log.len().min(next + 256);
            (next..end)
                .map(|i| (i, log.get(i, &inner.encoder)))
                .collect()
        };
        if batch.is_empty() {
            if tx.flush().await.is_err() {
                return;
            }
            tokio::select! {
                _ = appended => continue,
                _ = &mut gone => return,
            }
        }
        for (index, e) in batch {
            next = index + 1;
            if !filter.wants(&e) {
                continue;
            }
            let ignore_max = inner.faults.lock().unwrap().ignore_max_message_size;
            if filter.max_message_bytes > 0
                && e.json.len() > filter.max_message_bytes
                && !ignore_max
            {
                continue;
            }
            let bad = compress && {
                let mut f = inner.faults.lock().unwrap();
                let hit = f.bad_frame_at == Some(index);
                if hit {
                    f.bad_frame_at = None;
                }
                hit
            };
            let msg = if bad {
                let mut frame = inner.encoder.compress(&e.json);
                let at = frame.len() / 2;
                frame.truncate(at);
                Message::Binary(Bytes::from(frame))
            } else if compress {
                match e.frame {
                    Some(frame) => Message::Binary(frame),
                    None => Message::Binary(Bytes::from(inner.encoder.compress(&e.json))),
                }
            } else {
                Message::Text(String::from_utf8_lossy(&e.json).into_owned().into())
            };
            if tx.feed(msg).await.is_err() {
                return;
            }
            inner
                .sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            sent_here += 1;
            let rate = *inner.rate.lock().unwrap();
            if rate > 0 {
                let due = started + Duration::from_secs_f64(sent_here as f64 / rate as f64);
                if due > tokio::time::Instant::now() {
                    let _ = tx.flush().await;
                    tokio::time::sleep_until(due).await;
                }
            }
            let (drop_now, close_now) = {
                let mut f = inner.faults.lock().unwrap();
                let drop_now = f.drop_after == Some(sent_here);
                if drop_now {
                    f.drop_after = None;
                }
                let close_now = match &f.close_after {
                    Some((n, _, _)) if *n == sent_here => f.close_after.take(),
                    _ => None,
                };
                (drop_now, close_now)
            };
            if drop_now {
                let _ = tx.flush().await;
                return;
            }
            if let Some((_, code, reason)) = close_now {
                let _ = tx
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    })))
                    .await;
                return;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn http_error(status: u16, body: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(body.to_string()));
    *resp.status_mut() =
        tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status).unwrap();
    resp
}
