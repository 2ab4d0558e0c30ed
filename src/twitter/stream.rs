//! The live stream loop: connect, read, frame, hand over, and reconnect as Twitter documents.
//!
//! Reading never waits on anything but the socket: each framed message is offered to the
//! pipeline (which never blocks) before the next read. Every way a connection can end maps to
//! one back-off class, or to a fatal error for the statuses and disconnects that retrying
//! cannot fix.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzDecoder;
use http_body_util::BodyExt;

use super::backoff::{Backoff, BackoffPolicy, ErrorClass};
use super::client::{fatal_status_hint, StreamClient};
use super::framer::{Frame, Framer, Framing};
use super::message::{self, Message};
use crate::error::{Error, Result};
use crate::pipeline::intake::{Flow, Intake, Prepared};
use crate::pipeline::shutdown::Shutdown;
use crate::pipeline::stats::Stats;

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub stall_timeout: Duration,
    pub max_record_bytes: usize,
    pub backoff: BackoffPolicy,
    pub framing: Framing,
}

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
}

pub async fn run(
    client: &StreamClient,
    cfg: &StreamConfig,
    intake: &mut Intake,
    shutdown: &Shutdown,
) -> Result<End> {
    let mut backoff = Backoff::new(cfg.backoff.clone());
    let mut first = true;
    tracing::info!(url = %client.url(), "connecting to the stream");
    loop {
        if shutdown.is_triggered() {
            return Ok(End::Shutdown);
        }
        if !first {
            Stats::add(&intake.stats.reconnects, 1);
        }
        first = false;
        let outcome = tokio::select! {
            o = connection(client, cfg, intake, &mut backoff) => o,
            _ = shutdown.wait() => return Ok(End::Shutdown),
        };
        match outcome {
            Outcome::LimitReached => return Ok(End::LimitReached),
            Outcome::Fatal(msg) => return Err(Error::runtime(msg)),
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
) -> Outcome {
    let stall = cfg.stall_timeout;
    let resp = match tokio::time::timeout(stall, client.open()).await {
        Err(_) => {
            return Outcome::Retry(ErrorClass::Network, format!("no response within {stall:?}"))
        }
        Ok(Err(e)) => {
            return Outcome::Retry(
                ErrorClass::Network,
                format!("cannot connect: {}", error_chain(&e)),
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
        if let Some(hint) = fatal_status_hint(status) {
            return Outcome::Fatal(format!("{hint}. Server said: {said:?}"));
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
                    format!("connection lost: {}", error_chain(&e)),
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
        if !frames.is_empty() && !healthy {
            healthy = true;
            backoff.reset();
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
                    Prepared::Control(_) => {}
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
