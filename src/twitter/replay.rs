//! `--from-file`: replay line-delimited tweet JSON (archives, demos, benchmarks) through the
//! same intake as the live stream. Gzip input is recognised by its magic bytes, so `.gz`
//! files and gzipped stdin both just work.
//!
//! File reading is blocking I/O, so it runs on a blocking thread and hands 256 KiB pieces to
//! the async side, which frames, classifies and sends with backpressure.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use tokio::sync::mpsc;

use super::framer::{Frame, Framer, Framing};
use super::stream::End;
use crate::error::{Error, Result};
use crate::pipeline::intake::{Flow, Intake, Prepared};
use crate::pipeline::shutdown::Shutdown;
use crate::pipeline::stats::Stats;

const PIECE: usize = 256 * 1024;

pub fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| {
            Error::usage(format!("cannot open --from-file {}: {e}", path.display()))
        })?)
    };
    let mut reader = BufReader::with_capacity(PIECE, raw);
    let head = reader
        .fill_buf()
        .map_err(|e| Error::usage(format!("cannot read --from-file {}: {e}", path.display())))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

pub async fn run(path: &Path, max_record_bytes: usize, intake: &mut Intake, shutdown: &Shutdown) -> Result<End> {
    let mut reader = open(path)?;
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let reading = tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; PIECE];
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(buf)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    let mut framer = Framer::new(Framing::Newline, max_record_bytes);
    let mut frames = Vec::new();
    let mut line_no: u64 = 0;
    let end = loop {
        let piece = tokio::select! {
            p = rx.recv() => p,
            _ = shutdown.wait() => break End::Shutdown,
        };
        let at_eof = piece.is_none();
        let piece = match piece {
            // A last line without its newline still counts.
            None => b"\n".to_vec(),
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                return Err(Error::runtime(format!("reading --from-file {} failed: {e}", path.display())))
            }
        };
        framer.push(&piece, &mut frames).expect("newline framing has no framing errors");
        let mut stop = None;
        for f in frames.drain(..) {
            line_no += 1;
            match f {
                Frame::KeepAlive => {}
                Frame::Oversized(n) => {
                    Stats::add(&intake.stats.oversized, 1);
                    tracing::warn!(line = line_no, bytes = n, "skipped a line longer than --max-record-bytes");
                }
                Frame::Record(bytes) if stop.is_none() => {
                    if let Prepared::Record(r) = intake.prepare(bytes) {
                        if intake.send(r).await == Flow::LimitReached {
                            stop = Some(End::LimitReached);
                        }
                    }
                }
                Frame::Record(_) => {}
            }
        }
        if let Some(end) = stop {
            break end;
        }
        if at_eof {
            break End::EndOfInput;
        }
    };
    drop(rx);
    reading.abort();
    Ok(end)
}
