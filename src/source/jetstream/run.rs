//! The Jetstream read loop: connect, read frames, hand each event over, and reconnect.
//!
//! Reading never waits on anything but the socket: each event is offered to the [`Output`]
//! (which never blocks) before the next frame is read.
//!
//! **Liveness.** We ping every [`JetstreamConfig::ping_interval`]; anything from the server
//! (an event, a pong, its own ping) proves the connection alive. Only when nothing at all came
//! for [`JetstreamConfig::stall_timeout`] is the connection stalled: a filtered stream may be
//! quiet for hours, but a live server answers pings.
//!
//! **Frames that cannot be used.** An event over `--max-record-bytes` (as sent, or once
//! decompressed) is counted, reported and skipped; the connection goes on. A binary frame that
//! fails to decompress (damaged, another dictionary) is counted and reported, and we reconnect
//! from the last good event *without* compression for the rest of the run, as Jetstream's own
//! client guide advises (never fail the stream on a compression problem): the event it held
//! is sent again as text, so nothing is lost. A message over the WebSocket limit (four times
//! `--max-record-bytes`, which we also send as `maxMessageSizeBytes` so that the server skips
//! such events itself) ends the connection like a network error.
//!
//! **Reconnecting.** Every way a connection ends maps onto a back-off class (see
//! [`super::reconnect`]); waits carry jitter; the ladders restart only after a connection
//! stayed up for [`JetstreamConfig::healthy_after`], so a server that accepts and drops at
//! once is never hammered. Where each connection resumes is [`super::resume`]'s business.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::connect::{self, ConnectError, Socket};
use super::error::JetstreamError;
use super::event::{self, EventKind};
use super::instances::Instances;
use super::reconnect::{self, Verdict};
use super::resume::{Gap, Resume, ResumeConfig};
use super::stats::JetstreamStats;
use super::subscribe::{Request, Subscription};
use super::zstd::{DecodeError, Decompressor};
use crate::backoff::{Backoff, BackoffPolicy, ErrorClass};
use crate::logging::{Every, QUIET};
use crate::shutdown::Shutdown;
use crate::source::{End, Flow, Output, SourceStats};

/// Everything the loop needs to know.
#[derive(Debug, Clone)]
pub(crate) struct JetstreamConfig {
    pub instances: Instances,
    pub subscription: Subscription,
    pub resume: ResumeConfig,
    /// The kept cursor to start from and the instance it came from (None: live).
    pub start: Option<(i64, Option<usize>)>,
    pub max_record_bytes: usize,
    pub ping_interval: Duration,
    pub stall_timeout: Duration,
    /// For TCP, TLS and the upgrade together.
    pub connect_timeout: Duration,
    /// A connection up this long resets the back-off ladders.
    pub healthy_after: Duration,
    pub backoff: BackoffPolicy,
    pub tls: Arc<ClientConfig>,
}

impl JetstreamConfig {
    /// The defaults for everything but what to subscribe to.
    pub(crate) fn new(instances: Instances, subscription: Subscription) -> Self {
        JetstreamConfig {
            instances,
            subscription,
            resume: ResumeConfig::default(),
            start: None,
            max_record_bytes: 1024 * 1024,
            ping_interval: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(20),
            healthy_after: Duration::from_secs(30),
            backoff: BackoffPolicy::default(),
            tls: connect::tls_config(),
        }
    }

    /// The largest WebSocket message accepted: room for an event four times the record limit
    /// (which is then counted and skipped), so that only absurd messages end a connection.
    fn ws_limit(&self) -> usize {
        self.max_record_bytes.saturating_mul(4).max(64 * 1024)
    }
}

/// How one connection ended.
enum Ended {
    Stopped,
    Verdict(Verdict),
    /// A frame failed to decompress: reconnect without compression.
    BadFrame(String),
}

/// Reads Jetstream into `out` until shutdown, the output says stop, or a fatal error. What
/// every live source counts goes to `common`; what only Jetstream has, to `stats`.
pub(crate) async fn run<O: Output>(
    mut cfg: JetstreamConfig,
    out: &mut O,
    stats: &JetstreamStats,
    common: &SourceStats,
    shutdown: &Shutdown,
) -> Result<End, JetstreamError> {
    if cfg.subscription.max_message_bytes == 0 {
        cfg.subscription.max_message_bytes = cfg.ws_limit();
    }
    let mut reader = Reader {
        resume: Resume::new(cfg.resume.clone(), cfg.start),
        zstd: Decompressor::new(cfg.max_record_bytes),
        compress: cfg.subscription.compress,
        out,
        stats,
        common,
        cfg: &cfg,
        oversized: Every::new(QUIET),
        unparsed: Every::new(QUIET),
    };
    let mut instances = cfg.instances.clone();
    let mut backoff = Backoff::new(cfg.backoff.clone());
    loop {
        if shutdown.is_triggered() {
            return Ok(End::Shutdown);
        }
        let (index, endpoint) = instances.current();
        let endpoint = endpoint.clone();
        JetstreamStats::set(&stats.instance, index as u64);
        let cursor = reader.resume.cursor_for(index);
        let request = cfg.subscription.request(&endpoint, cursor, reader.compress);
        tracing::info!(url = %request.url, hello = request.hello.is_some(), "connecting to Jetstream");
        let started = Instant::now();
        let ended = tokio::select! {
            e = reader.connection(index, &endpoint, &request, &mut instances) => e,
            _ = shutdown.wait() => return Ok(End::Shutdown),
        };
        common.connected.store(0, Relaxed);
        let (class, fail_over, why) = match ended {
            Ended::Stopped => return Ok(End::Stopped),
            Ended::BadFrame(why) => {
                reader.without_compression(&endpoint, &why);
                (ErrorClass::Network, false, format!("bad frame: {why}"))
            }
            Ended::Verdict(Verdict::Refused { status, said }) => {
                if instances.refused() {
                    return Err(JetstreamError::Refused {
                        url: request.url,
                        status,
                        said,
                    });
                }
                let why = format!("refused ({status}: {said:?})");
                (ErrorClass::Http, true, why)
            }
            Ended::Verdict(Verdict::Retry {
                class,
                fail_over,
                why,
            }) => (class, fail_over, why),
        };
        if started.elapsed() >= cfg.healthy_after {
            backoff.reset();
        }
        count_reconnect(common, class);
        if fail_over && instances.len() > 1 {
            instances.fail_over();
            JetstreamStats::add(&stats.fail_overs, 1);
        }
        let wait = reconnect::jitter(backoff.next(class));
        tracing::warn!(
            class = ?class,
            wait_ms = wait.as_millis() as u64,
            next = %instances.current().1.display(),
            "Jetstream: {why}; reconnecting"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return Ok(End::Shutdown),
        }
    }
}

fn count_reconnect(common: &SourceStats, class: ErrorClass) {
    SourceStats::add(&common.reconnects, 1);
    SourceStats::add(
        match class {
            ErrorClass::Network => &common.reconnects_network,
            ErrorClass::Http => &common.reconnects_http,
            ErrorClass::RateLimited => &common.reconnects_rate_limited,
        },
        1,
    );
}

/// The state that lives across connections.
struct Reader<'a, O> {
    cfg: &'a JetstreamConfig,
    resume: Resume,
    zstd: Decompressor,
    compress: bool,
    out: &'a mut O,
    stats: &'a JetstreamStats,
    common: &'a SourceStats,
    oversized: Every,
    unparsed: Every,
}

impl<O: Output> Reader<'_, O> {
    /// A compressed frame could not be decoded: the rest of this run asks for plain frames.
    fn without_compression(&mut self, endpoint: &super::subscribe::Endpoint, why: &str) {
        if self.compress {
            self.compress = false;
            tracing::warn!(
                "a compressed frame from {} could not be decoded ({why}); reconnecting \
                 from the last good event without compression for the rest of this run",
                endpoint.display()
            );
        }
    }

    /// One connection, from connecting to its end.
    async fn connection(
        &mut self,
        instance: usize,
        endpoint: &super::subscribe::Endpoint,
        request: &Request,
        instances: &mut Instances,
    ) -> Ended {
        let stats = self.stats;
        let ws_limit = self.cfg.ws_limit();
        // Compressed frames can be slightly larger than their content: allow for zstd's
        // framing on top of the limit the server applies to the uncompressed event.
        let frame_limit = ws_limit + ws_limit / 64 + 1024;
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(frame_limit))
            .max_frame_size(Some(frame_limit));
        let connecting = connect::connect(endpoint, &request.url, &self.cfg.tls, ws_config);
        let mut ws = match tokio::time::timeout(self.cfg.connect_timeout, connecting).await {
            Err(_) => {
                return Ended::Verdict(Verdict::Retry {
                    class: ErrorClass::Network,
                    fail_over: true,
                    why: format!(
                        "no WebSocket connection within {:?}",
                        self.cfg.connect_timeout
                    ),
                })
            }
            Ok(Err(ConnectError::Network(why))) => {
                return Ended::Verdict(Verdict::Retry {
                    class: ErrorClass::Network,
                    fail_over: true,
                    why,
                })
            }
            Ok(Err(ConnectError::Http { status, said })) => {
                self.common
                    .last_http_status
                    .store(u64::from(status), Relaxed);
                return Ended::Verdict(reconnect::http_status(status, &said));
            }
            Ok(Ok(ws)) => ws,
        };
        self.common.last_http_status.store(101, Relaxed);
        self.common.connected.store(1, Relaxed);
        JetstreamStats::add(&stats.connects, 1);
        instances.connected();
        tracing::info!(compress = self.compress, "connected to Jetstream");
        if let Some(hello) = &request.hello {
            if let Err(e) = ws.send(Message::text(hello.clone())).await {
                return network(
                    format!("cannot send the subscription's options: {e}"),
                    false,
                );
            }
        }
        self.read(&mut ws, instance).await
    }

    /// Reads until the connection ends; pings and watches for stalls meanwhile.
    async fn read(&mut self, ws: &mut Socket, instance: usize) -> Ended {
        let stats = self.stats;
        let (ping_every, stall) = (self.cfg.ping_interval, self.cfg.stall_timeout);
        let mut tick =
            tokio::time::interval(ping_every.min(stall / 4).max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last_heard = Instant::now();
        let mut last_ping = Instant::now();
        let mut pings = 0u64;
        loop {
            tokio::select! {
                biased;
                msg = ws.next() => {
                    last_heard = Instant::now();
                    match msg {
                        None => return network("the connection ended without a close frame".into(), false),
                        Some(Err(e)) => return self.read_error(e),
                        Some(Ok(m)) => {
                            if let Some(ended) = self.message(m, instance) {
                                return ended;
                            }
                        }
                    }
                }
                _ = tick.tick() => {
                    if last_heard.elapsed() >= stall {
                        JetstreamStats::add(&stats.stalls, 1);
                        return network(
                            format!("stall: nothing from the server, not even a pong, for {stall:?}"),
                            true,
                        );
                    }
                    if last_ping.elapsed() >= ping_every {
                        last_ping = Instant::now();
                        pings += 1;
                        let ping = Message::Ping(Bytes::copy_from_slice(&pings.to_be_bytes()));
                        match tokio::time::timeout(stall, ws.send(ping)).await {
                            Ok(Ok(())) => JetstreamStats::add(&stats.pings_sent, 1),
                            Ok(Err(e)) => return network(format!("cannot send a ping: {e}"), false),
                            Err(_) => return network(format!("stall: a ping could not be sent for {stall:?}"), true),
                        }
                    }
                }
            }
        }
    }

    /// Handles one message; `Some` ends the connection.
    fn message(&mut self, m: Message, instance: usize) -> Option<Ended> {
        let stats = self.stats;
        match m {
            Message::Binary(frame) => {
                JetstreamStats::add(&stats.wire_bytes, frame.len() as u64);
                match self.zstd.decompress(&frame) {
                    Ok(value) => return self.event(value, instance),
                    Err(DecodeError::TooLarge { limit, declared }) => {
                        self.skip_oversized(frame.len(), declared, limit)
                    }
                    Err(DecodeError::Corrupt(why)) => {
                        JetstreamStats::add(&stats.bad_frames, 1);
                        return Some(Ended::BadFrame(why));
                    }
                }
            }
            Message::Text(text) => {
                JetstreamStats::add(&stats.wire_bytes, text.len() as u64);
                if text.len() > self.cfg.max_record_bytes {
                    self.skip_oversized(
                        text.len(),
                        Some(text.len() as u64),
                        self.cfg.max_record_bytes,
                    );
                } else {
                    return self.event(Bytes::from(text), instance);
                }
            }
            Message::Pong(_) => JetstreamStats::add(&stats.pongs, 1),
            // tungstenite queues the pong answer itself.
            Message::Ping(_) => JetstreamStats::add(&stats.pings_received, 1),
            Message::Close(frame) => {
                let (code, reason) = match &frame {
                    Some(f) => (Some(f.code), f.reason.to_string()),
                    None => (None, String::new()),
                };
                if let Some(c) = code {
                    JetstreamStats::set(&stats.last_close_code, u64::from(u16::from(c)));
                }
                return Some(Ended::Verdict(reconnect::close(code, &reason)));
            }
            Message::Frame(_) => {}
        }
        None
    }

    fn event(&mut self, value: Bytes, instance: usize) -> Option<Ended> {
        let stats = self.stats;
        JetstreamStats::add(&stats.event_bytes, value.len() as u64);
        let (frame, kind) = event::frame(value);
        JetstreamStats::add(
            match kind {
                EventKind::Commit => &stats.commits,
                EventKind::Identity => &stats.identities,
                EventKind::Account => &stats.accounts,
                EventKind::Other => &stats.other_kinds,
                EventKind::Unparsed => &stats.unparsed,
            },
            1,
        );
        if kind == EventKind::Unparsed {
            if let Some(n) = self.unparsed.tick() {
                let start =
                    String::from_utf8_lossy(&frame.value[..frame.value.len().min(80)]).into_owned();
                tracing::warn!(bytes = frame.value.len(), %start, unparsed_since_last_report = n, "a Jetstream frame that is not an event; forwarding it unkeyed for the consumer to file as an error");
            }
        }
        if let Some(t) = frame.cursor {
            stats.last_time_us.store(t, Relaxed);
            let now = chrono::Utc::now().timestamp_micros();
            if let Some(gap) = self.resume.observe(t, instance, now) {
                report_gap(&gap, self.common);
            }
        }
        match self.out.offer(frame) {
            Flow::Continue => None,
            Flow::Stop => Some(Ended::Stopped),
        }
    }

    fn skip_oversized(&mut self, wire: usize, declared: Option<u64>, limit: usize) {
        SourceStats::add(&self.common.oversized, 1);
        if let Some(n) = self.oversized.tick() {
            tracing::warn!(
                frame_bytes = wire,
                event_bytes = declared,
                max = limit,
                oversized_since_last_report = n,
                "skipped a Jetstream event longer than the record limit"
            );
        }
    }

    fn read_error(&self, e: tungstenite::Error) -> Ended {
        use tungstenite::error::CapacityError;
        match e {
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                SourceStats::add(&self.common.oversized, 1);
                network(
                    format!("a message of {size} bytes, over the {max_size}-byte WebSocket limit"),
                    false,
                )
            }
            e => network(format!("connection lost: {e}"), false),
        }
    }
}

fn network(why: String, fail_over: bool) -> Ended {
    Ended::Verdict(Verdict::Retry {
        class: ErrorClass::Network,
        fail_over,
        why,
    })
}

fn report_gap(gap: &Gap, stats: &SourceStats) {
    SourceStats::add(&stats.gaps, 1);
    SourceStats::add(&stats.gap_seconds, gap.length().as_secs());
    let at = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default()
    };
    if gap.certain {
        tracing::warn!(
            gap_start = %at(gap.start_us),
            gap_end = %at(gap.end_us),
            gap_s = gap.length().as_secs(),
            "gap: the resume position is older than Jetstream keeps; events between start and end are missing"
        );
    } else {
        tracing::warn!(
            gap_start = %at(gap.start_us),
            gap_end = %at(gap.end_us),
            gap_s = gap.length().as_secs(),
            "possible gap: the first event after resuming came long after the resume position; either the stream was quiet or Jetstream no longer had the events in between"
        );
    }
}
