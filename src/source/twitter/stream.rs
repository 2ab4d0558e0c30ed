//! The live stream loop: connect, read, frame, hand over, and reconnect as Twitter documents.
//!
//! Reading never waits on anything but the socket: each framed message is offered to the
//! pipeline (which never blocks) before the next read. Every way a connection can end maps to
//! one back-off class, or to a fatal error for the statuses and disconnects that retrying
//! cannot fix.
//!
//! On the v2 stream two more things happen here. Error objects inside the stream are acted
//! on (`operational-disconnect`: reconnect now, the server is closing this connection anyway).
//! And a reconnect asks for `backfill_minutes` covering the time since the last byte we read
//! (at most the 5 minutes Twitter keeps), so a short outage loses nothing; accounts without
//! backfill get a refusal, which is reported once and never asked again. The tweets backfill
//! repeats carry their id as the frame's dedupe identity, and the output drops them.
//!
//! A reconnect that backfill did not cover (no backfill for the account, `--no-backfill`,
//! v1.1, or an outage longer than the 5 minutes backfill reaches) leaves a gap: its start (the
//! last byte before the outage) and end (the first byte after it, less what backfill sent
//! again) are reported once the stream is back, so that the tweets of that time can be
//! fetched from the search API.

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use flate2::write::GzDecoder;
use http_body_util::BodyExt;

use super::client::{fatal_status_meaning, StreamClient};
use super::message::{self, Message, Read};
use crate::backoff::{Backoff, BackoffPolicy, ErrorClass};
use crate::shutdown::Shutdown;
use crate::source::framer::{self, Framer, Framing};
use crate::source::{End, Error, Flow, Output, SourceStats};

#[derive(Debug, Clone)]
pub(crate) struct StreamConfig {
    /// No byte (not even a keep-alive) for this long: reconnect.
    pub(crate) stall_timeout: Duration,
    pub(crate) max_record_bytes: usize,
    pub(crate) backoff: BackoffPolicy,
    pub(crate) framing: Framing,
    /// v2 only: ask for `backfill_minutes` when reconnecting.
    pub(crate) backfill: bool,
}

/// The most `backfill_minutes` Twitter accepts.
pub(crate) const MAX_BACKFILL: Duration = Duration::from_secs(5 * 60);

enum Outcome {
    Retry(ErrorClass, String),
    Fatal(Error),
    Stopped,
    /// The server refused `backfill_minutes` (the account does not have it).
    BackfillRefused(String),
}

/// What the loop remembers across connections.
#[derive(Default)]
struct Memory {
    /// When the last byte (record or keep-alive) arrived: the start of any gap.
    last_data: Option<Instant>,
    /// The same, by the clock, for reporting a gap.
    last_data_at: Option<DateTime<Utc>>,
    /// A reconnect in progress: where its gap starts, and how much of it backfill covers.
    gap: Option<(DateTime<Utc>, Duration)>,
    backfill_refused: bool,
}

/// What a reconnect missed: from the last byte before it to the first byte after it, less the
/// minutes backfill sent again. `None` when backfill covered it all.
pub(crate) fn uncovered(
    start: DateTime<Utc>,
    back: DateTime<Utc>,
    covered: Duration,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let end = back - chrono::Duration::from_std(covered).unwrap_or(chrono::Duration::MAX);
    (end > start).then_some((start, end))
}

/// The `backfill_minutes` to ask for after a gap: whole minutes covering it, 1 to 5.
pub(crate) fn backfill_minutes(gap: Duration) -> u32 {
    let minutes = gap.as_secs().div_ceil(60).max(1);
    minutes.min(MAX_BACKFILL.as_secs() / 60) as u32
}

/// Reads the stream into `out` until shutdown, until `out` says stop, or until a failure
/// that reconnecting cannot fix.
pub(crate) async fn run(
    client: &StreamClient,
    cfg: &StreamConfig,
    out: &mut impl Output,
    stats: &SourceStats,
    shutdown: &Shutdown,
) -> Result<End, Error> {
    let mut backoff = Backoff::new(cfg.backoff.clone());
    let mut memory = Memory::default();
    let mut first = true;
    tracing::info!(url = %client.url(), stall_timeout = ?cfg.stall_timeout, "connecting to the stream");
    loop {
        if shutdown.is_triggered() {
            return Ok(End::Shutdown);
        }
        if !first {
            SourceStats::add(&stats.reconnects, 1);
        }
        first = false;
        let backfill = match memory.last_data {
            Some(at) if client.is_v2() && cfg.backfill && !memory.backfill_refused => {
                let gap = at.elapsed();
                let minutes = backfill_minutes(gap);
                if gap > MAX_BACKFILL {
                    tracing::warn!(
                        gap_s = gap.as_secs(),
                        "the stream was down longer than the 5 minutes backfill can cover; tweets from before the last 5 minutes are lost"
                    );
                }
                tracing::info!(
                    backfill_minutes = minutes,
                    gap_ms = gap.as_millis() as u64,
                    "asking for backfill of the gap; repeated tweets are dropped by id"
                );
                Some(minutes)
            }
            _ => None,
        };
        if let Some(at) = memory.last_data_at {
            let covered = Duration::from_secs(60 * u64::from(backfill.unwrap_or(0)));
            memory.gap.get_or_insert((at, covered)).1 = covered;
        }
        let outcome = tokio::select! {
            o = connection(client, cfg, out, stats, &mut backoff, &mut memory, backfill) => o,
            _ = shutdown.wait() => return Ok(End::Shutdown),
        };
        match outcome {
            Outcome::Stopped => return Ok(End::Stopped),
            Outcome::Fatal(e) => return Err(e),
            Outcome::BackfillRefused(said) => {
                // Reported once; every later reconnect goes without it. No wait: the refusal
                // says nothing about the stream itself.
                memory.backfill_refused = true;
                tracing::warn!(
                    "Twitter refused backfill_minutes (this account's access level does not include it, it seems); reconnecting without backfill from now on, so the tweets of a gap are lost. Server said: {said:?}"
                );
            }
            Outcome::Retry(class, why) => {
                SourceStats::add(
                    match class {
                        ErrorClass::Network => &stats.reconnects_network,
                        ErrorClass::Http => &stats.reconnects_http,
                        ErrorClass::RateLimited => &stats.reconnects_rate_limited,
                    },
                    1,
                );
                let wait = backoff.next(class);
                tracing::warn!(class = ?class, wait_ms = wait.as_millis() as u64, "{why}; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait() => return Ok(End::Shutdown),
                }
            }
        }
    }
}

/// One connection: open, check the status, then read until it ends.
async fn connection(
    client: &StreamClient,
    cfg: &StreamConfig,
    out: &mut impl Output,
    stats: &SourceStats,
    backoff: &mut Backoff,
    memory: &mut Memory,
    backfill: Option<u32>,
) -> Outcome {
    let resp = match open(client, cfg.stall_timeout, stats, backfill).await {
        Ok(r) => r,
        Err(outcome) => return outcome,
    };
    if backfill.is_some() {
        SourceStats::add(&stats.backfills, 1);
    }
    let gzip = resp
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
    tracing::info!(gzip, "connected: HTTP 200");
    stats.connected.store(1, Relaxed);
    // Backfill repeats tweets of the v2 stream: its frames carry their id to drop repeats by.
    let body = Body {
        body: resp.into_body(),
        gzip,
        dedupe: client.is_v2(),
    };
    let outcome = read_body(body, cfg, out, stats, backoff, memory).await;
    stats.connected.store(0, Relaxed);
    outcome
}

/// Sends the request; anything but a 200 becomes the outcome of this connection.
async fn open(
    client: &StreamClient,
    stall: Duration,
    stats: &SourceStats,
    backfill: Option<u32>,
) -> Result<hyper::Response<hyper::body::Incoming>, Outcome> {
    let resp = match tokio::time::timeout(stall, client.open(backfill)).await {
        Err(_) => {
            return Err(Outcome::Retry(
                ErrorClass::Network,
                format!("no response within {stall:?}"),
            ))
        }
        Ok(Err(e)) => {
            return Err(Outcome::Retry(
                ErrorClass::Network,
                format!("cannot connect: {}", crate::error::chain(&e)),
            ))
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    stats.last_http_status.store(status as u64, Relaxed);
    if status == 200 {
        return Ok(resp);
    }
    let said = body_snippet(resp.into_body()).await;
    // Twitter answers a parameter the account may not use with 400 or 403. Whatever the
    // wording, the next attempt goes without backfill: if something else was wrong, that
    // attempt gets the same status and the fatal error below.
    if backfill.is_some() && matches!(status, 400 | 403) {
        return Err(Outcome::BackfillRefused(format!("HTTP {status}: {said}")));
    }
    if let Some(meaning) = fatal_status_meaning(status, client.is_v2()) {
        return Err(Outcome::Fatal(Error::Status {
            status,
            v2: client.is_v2(),
            meaning,
            said,
        }));
    }
    Err(if status == 429 && said.contains("TooManyConnections") {
        // v2 refuses a second connection rather than dropping the first (v1.1 dropped the
        // oldest). The other one may be another tweetpipe with this token, or our own
        // previous connection that Twitter has not noticed is gone: either way, wait on the
        // rate-limit ladder instead of fighting it for the slot.
        Outcome::Retry(
            ErrorClass::RateLimited,
            format!("HTTP 429 TooManyConnections: another connection with this bearer token holds the stream (another tweetpipe, or our previous connection not yet closed on Twitter's side); server said: {said:?}"),
        )
    } else {
        let class = if status == 420 || status == 429 {
            ErrorClass::RateLimited
        } else {
            ErrorClass::Http
        };
        Outcome::Retry(
            class,
            format!("HTTP {status} from the stream (server said: {said:?})"),
        )
    })
}

/// A 200 response's body and how to read it.
struct Body {
    body: hyper::body::Incoming,
    gzip: bool,
    /// Frames carry their tweet id as the identity repeats are dropped by.
    dedupe: bool,
}

/// Reads a 200 response's body, gunzipping when the server compresses, until it ends.
async fn read_body(
    Body {
        mut body,
        gzip,
        dedupe,
    }: Body,
    cfg: &StreamConfig,
    out: &mut impl Output,
    stats: &SourceStats,
    backoff: &mut Backoff,
    memory: &mut Memory,
) -> Outcome {
    let stall = cfg.stall_timeout;
    let mut decoder = gzip.then(|| GzDecoder::new(Vec::with_capacity(64 * 1024)));
    let mut framer = Framer::new(cfg.framing, cfg.max_record_bytes);
    let mut frames = Vec::new();
    let mut healthy = false;
    loop {
        let frame = match tokio::time::timeout(stall, body.frame()).await {
            Err(_) => {
                return Outcome::Retry(ErrorClass::Network, format!("stall: no data for {stall:?}"))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Outcome::Retry(
                    ErrorClass::Network,
                    format!("connection lost: {}", crate::error::chain(&e)),
                )
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let pushed = match decoder.as_mut() {
            Some(d) => {
                if let Err(e) = d.write_all(&data) {
                    return Outcome::Retry(
                        ErrorClass::Network,
                        format!("corrupt gzip stream: {e}"),
                    );
                }
                // Frames become slices of this buffer, so hand the decoder a fresh one.
                let plain = std::mem::replace(d.get_mut(), Vec::with_capacity(64 * 1024));
                framer.push_bytes(bytes::Bytes::from(plain), &mut frames)
            }
            None => framer.push_bytes(data, &mut frames),
        };
        if let Err(e) = pushed {
            return Outcome::Retry(ErrorClass::Network, e.to_string());
        }
        if !frames.is_empty() {
            memory.last_data = Some(Instant::now());
            let now = Utc::now();
            memory.last_data_at = Some(now);
            if !healthy {
                healthy = true;
                backoff.reset();
                if let Some((start, covered)) = memory.gap.take() {
                    report_gap(start, now, covered, stats);
                }
            }
        }
        if let Some(outcome) = hand_over(&mut frames, cfg, out, stats, dedupe) {
            return outcome;
        }
    }
    if let Some(mut d) = decoder {
        if let Err(e) = d.try_finish() {
            return Outcome::Retry(ErrorClass::Network, format!("gzip stream truncated: {e}"));
        }
    }
    Outcome::Retry(ErrorClass::Network, "the server closed the stream".into())
}

/// The stream is back after a reconnect: report what backfill did not cover, if anything.
fn report_gap(start: DateTime<Utc>, back: DateTime<Utc>, covered: Duration, stats: &SourceStats) {
    let Some((from, to)) = uncovered(start, back, covered) else {
        return;
    };
    let seconds = (to - from).num_seconds().max(0) as u64;
    SourceStats::add(&stats.gaps, 1);
    SourceStats::add(&stats.gap_seconds, seconds);
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tracing::warn!(
        gap_start = %at(from),
        gap_end = %at(to),
        gap_s = seconds,
        "gap: tweets posted between start and end were not read (the reconnect was not covered by backfill); fetch them from the search API if they matter"
    );
}

/// Hands each framed message to `out`; the outcome of the connection when one of them ends
/// it (the output stopping, a fatal disconnect, an operational-disconnect).
fn hand_over(
    frames: &mut Vec<framer::Frame>,
    cfg: &StreamConfig,
    out: &mut impl Output,
    stats: &SourceStats,
    dedupe: bool,
) -> Option<Outcome> {
    for f in frames.drain(..) {
        match f {
            framer::Frame::KeepAlive => SourceStats::add(&stats.keepalives, 1),
            framer::Frame::Oversized(n) => {
                SourceStats::add(&stats.oversized, 1);
                tracing::warn!(
                    bytes = n,
                    max = cfg.max_record_bytes,
                    "skipped a message longer than the record limit"
                );
            }
            framer::Frame::Record(bytes) => match message::read(bytes, dedupe, stats) {
                Read::Record(frame) => {
                    if out.offer(frame) == Flow::Stop {
                        return Some(Outcome::Stopped);
                    }
                }
                Read::Control(Message::Disconnect { code, reason })
                    if message::disconnect_is_fatal(code) =>
                {
                    return Some(Outcome::Fatal(Error::Disconnected {
                        code,
                        meaning: message::disconnect_meaning(code),
                        reason,
                    }));
                }
                Read::Control(Message::StreamError(e)) if e.is_operational_disconnect() => {
                    return Some(Outcome::Retry(
                        ErrorClass::Network,
                        format!(
                            "Twitter announced an operational-disconnect ({}): {}",
                            e.disconnect_type, e.detail
                        ),
                    ));
                }
                Read::Control(_) => {}
            },
        }
    }
    None
}

/// Up to 512 bytes of an error response, for the log; bounded in time too.
async fn body_snippet(mut body: hyper::body::Incoming) -> String {
    let mut out = Vec::new();
    let read = async {
        while let Some(Ok(f)) = body.frame().await {
            if let Ok(d) = f.into_data() {
                out.extend_from_slice(&d);
                if out.len() >= 512 {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    out.truncate(512);
    String::from_utf8_lossy(&out).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_backfill_did_not_cover() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (start, back) = (t("2026-03-01T10:00:00Z"), t("2026-03-01T10:02:30Z"));
        assert_eq!(uncovered(start, back, Duration::ZERO), Some((start, back)));
        assert_eq!(uncovered(start, back, Duration::from_secs(180)), None);
        let back = t("2026-03-01T10:08:00Z");
        assert_eq!(
            uncovered(start, back, Duration::from_secs(300)),
            Some((start, t("2026-03-01T10:03:00Z")))
        );
    }

    #[test]
    fn backfill_covers_the_gap_in_whole_minutes() {
        let s = Duration::from_secs;
        assert_eq!(backfill_minutes(Duration::from_millis(300)), 1);
        assert_eq!(backfill_minutes(s(60)), 1);
        assert_eq!(backfill_minutes(s(61)), 2);
        assert_eq!(backfill_minutes(s(299)), 5);
        assert_eq!(backfill_minutes(s(3600)), 5);
    }
}
