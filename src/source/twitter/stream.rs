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
//! repeats are dropped by the intake's [`crate::produce::dedup::Dedup`].

use std::io::Write;
use std::time::{Duration, Instant};

use flate2::write::GzDecoder;
use http_body_util::BodyExt;

use crate::backoff::{Backoff, BackoffPolicy, ErrorClass};
use super::client::{fatal_status_hint, fatal_status_hint_v2, StreamClient};
use crate::source::framer::{Frame, Framer, Framing};
use super::message::{self, Message};
use crate::error::{Error, Result};
use crate::produce::intake::{Flow, Intake, Prepared};
use crate::shutdown::Shutdown;
use crate::produce::stats::Stats;

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub stall_timeout: Duration,
    pub max_record_bytes: usize,
    pub backoff: BackoffPolicy,
    pub framing: Framing,
    /// v2 only: ask for `backfill_minutes` when reconnecting.
    pub backfill: bool,
}

/// The most `backfill_minutes` Twitter accepts.
pub const MAX_BACKFILL: Duration = Duration::from_secs(5 * 60);

/// Why the source stopped reading, when it stopped without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Asked to stop (signal).
    Shutdown,
    /// `--max-records` reached.
    LimitReached,
    /// The replayed file is exhausted.
    EndOfInput,
}

enum Outcome {
    Retry(ErrorClass, String),
    Fatal(String),
    LimitReached,
    /// The server refused `backfill_minutes` (the account does not have it).
    BackfillRefused(String),
}

/// What the loop remembers across connections.
#[derive(Default)]
struct Memory {
    /// When the last byte (record or keep-alive) arrived: the start of any gap.
    last_data: Option<Instant>,
    backfill_refused: bool,
}

/// The `backfill_minutes` to ask for after a gap: whole minutes covering it, 1 to 5.
pub fn backfill_minutes(gap: Duration) -> u32 {
    let minutes = gap.as_secs().div_ceil(60).max(1);
    minutes.min(MAX_BACKFILL.as_secs() / 60) as u32
}

pub async fn run(
    client: &StreamClient,
    cfg: &StreamConfig,
    intake: &mut Intake,
    shutdown: &Shutdown,
) -> Result<End> {
    let mut backoff = Backoff::new(cfg.backoff.clone());
    let mut memory = Memory::default();
    let mut first = true;
    tracing::info!(url = %client.url(), stall_timeout = ?cfg.stall_timeout, "connecting to the stream");
    loop {
        if shutdown.is_triggered() {
            return Ok(End::Shutdown);
        }
        if !first {
            Stats::add(&intake.stats.reconnects, 1);
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
        let outcome = tokio::select! {
            o = connection(client, cfg, intake, &mut backoff, &mut memory, backfill) => o,
            _ = shutdown.wait() => return Ok(End::Shutdown),
        };
        match outcome {
            Outcome::LimitReached => return Ok(End::LimitReached),
            Outcome::Fatal(msg) => return Err(Error::runtime(msg)),
            Outcome::BackfillRefused(said) => {
                // Reported once; every later reconnect goes without it. No wait: the refusal
                // says nothing about the stream itself.
                memory.backfill_refused = true;
                tracing::warn!(
                    "Twitter refused backfill_minutes (this account's access level does not include it, it seems); reconnecting without backfill from now on, so the tweets of a gap are lost. Server said: {said:?}"
                );
            }
            Outcome::Retry(class, why) => {
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

async fn connection(
    client: &StreamClient,
    cfg: &StreamConfig,
    intake: &mut Intake,
    backoff: &mut Backoff,
    memory: &mut Memory,
    backfill: Option<u32>,
) -> Outcome {
    let stall = cfg.stall_timeout;
    let resp = match tokio::time::timeout(stall, client.open(backfill)).await {
        Err(_) => {
            return Outcome::Retry(ErrorClass::Network, format!("no response within {stall:?}"))
        }
        Ok(Err(e)) => {
            return Outcome::Retry(
                ErrorClass::Network,
                format!("cannot connect: {}", crate::error::chain(&e)),
            )
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    intake
        .stats
        .last_http_status
        .store(status as u64, std::sync::atomic::Ordering::Relaxed);
    if status != 200 {
        let said = body_snippet(resp.into_body()).await;
        // Twitter answers a parameter the account may not use with 400 or 403. Whatever the
        // wording, the next attempt goes without backfill: if something else was wrong, that
        // attempt gets the same status and the fatal hint below.
        if backfill.is_some() && matches!(status, 400 | 403) {
            return Outcome::BackfillRefused(format!("HTTP {status}: {said}"));
        }
        let hint = if client.is_v2() {
            fatal_status_hint_v2(status)
        } else {
            fatal_status_hint(status)
        };
        if let Some(hint) = hint {
            return Outcome::Fatal(format!("{hint}. Server said: {said:?}"));
        }
        if status == 429 && said.contains("TooManyConnections") {
            // v2 refuses a second connection rather than dropping the first (v1.1 dropped the
            // oldest). The other one may be another tweetpipe with this token, or our own
            // previous connection that Twitter has not noticed is gone: either way, wait on
            // the rate-limit ladder instead of fighting it for the slot.
            return Outcome::Retry(
                ErrorClass::RateLimited,
                format!("HTTP 429 TooManyConnections: another connection with this bearer token holds the stream (another tweetpipe, or our previous connection not yet closed on Twitter's side); server said: {said:?}"),
            );
        }
        let class = if status == 420 || status == 429 {
            ErrorClass::RateLimited
        } else {
            ErrorClass::Http
        };
        return Outcome::Retry(
            class,
            format!("HTTP {status} from the stream (server said: {said:?})"),
        );
    }
    if backfill.is_some() {
        Stats::add(&intake.stats.backfills, 1);
    }
    let gzip = resp
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
    tracing::info!(gzip, "connected: HTTP 200");

    let mut decoder = gzip.then(|| GzDecoder::new(Vec::with_capacity(64 * 1024)));
    let mut framer = Framer::new(cfg.framing, cfg.max_record_bytes);
    let mut frames = Vec::new();
    let mut healthy = false;
    let mut body = resp.into_body();
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
            if !healthy {
                healthy = true;
                backoff.reset();
            }
        }
        for f in frames.drain(..) {
            match f {
                Frame::KeepAlive => Stats::add(&intake.stats.keepalives, 1),
                Frame::Oversized(n) => {
                    Stats::add(&intake.stats.oversized, 1);
                    tracing::warn!(
                        bytes = n,
                        max = cfg.max_record_bytes,
                        "skipped a message longer than --max-record-bytes"
                    );
                }
                Frame::Record(bytes) => match intake.prepare(bytes) {
                    Prepared::Record(r) => {
                        if intake.offer(r) == Flow::LimitReached {
                            return Outcome::LimitReached;
                        }
                    }
                    Prepared::Control(Message::Disconnect { code, reason })
                        if message::disconnect_is_fatal(code) =>
                    {
                        return Outcome::Fatal(format!(
                            "Twitter disconnected the stream with code {code} ({}): {reason}",
                            message::disconnect_meaning(code)
                        ));
                    }
                    Prepared::Control(Message::StreamError(e)) if e.is_operational_disconnect() => {
                        return Outcome::Retry(
                            ErrorClass::Network,
                            format!(
                                "Twitter announced an operational-disconnect ({}): {}",
                                e.disconnect_type, e.detail
                            ),
                        );
                    }
                    Prepared::Control(_) | Prepared::Duplicate => {}
                },
            }
        }
    }
    if let Some(mut d) = decoder {
        if let Err(e) = d.try_finish() {
            return Outcome::Retry(ErrorClass::Network, format!("gzip stream truncated: {e}"));
        }
    }
    Outcome::Retry(ErrorClass::Network, "the server closed the stream".into())
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
    fn backfill_covers_the_gap_in_whole_minutes() {
        let s = Duration::from_secs;
        assert_eq!(backfill_minutes(Duration::from_millis(300)), 1);
        assert_eq!(backfill_minutes(s(60)), 1);
        assert_eq!(backfill_minutes(s(61)), 2);
        assert_eq!(backfill_minutes(s(299)), 5);
        assert_eq!(backfill_minutes(s(3600)), 5);
    }
}
