//! Replay of line-delimited tweet JSON (archives, demos, benchmarks) into the same output as
//! the live stream. Gzip input is recognised by its magic bytes, so `.gz` files and gzipped
//! stdin both just work. A file cannot run away, so replay waits for room
//! ([`Output::send`]) instead of dropping.
//!
//! File reading is blocking I/O, so it runs on a blocking thread and hands 256 KiB pieces to
//! the async side, which frames, classifies and sends with backpressure.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use tokio::sync::mpsc;

use super::framer::{Frame, Framer, Framing};
use super::twitter::message::{self, Read as Message};
use super::{End, Error, Flow, Output, SourceStats};
use crate::shutdown::Shutdown;

const PIECE: usize = 256 * 1024;

/// Opens `path` (`-`: stdin), decompressing gzip. Called once before anything connects, so
/// that a wrong path is reported first.
pub(crate) fn open(path: &Path) -> Result<Box<dyn Read + Send>, Error> {
    let cannot = |_what: &str, source: std::io::Error| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut reader = BufReader::with_capacity(PIECE, std::io::stdin());
        let gzip = reader
            .fill_buf()
            .map_err(|e| cannot("read", e))?
            .starts_with(&GZIP_MAGIC);
        return Ok(if gzip {
            Box::new(MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        });
    }
    // A file is sniffed and rewound, so plain files are read without an extra buffer copy.
    let mut file = File::open(path).map_err(|e| cannot("open", e))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| cannot("read", e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| cannot("rewind", e))?;
    if n == 2 && magic == GZIP_MAGIC {
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            PIECE, file,
        ))))
    } else {
        Ok(Box::new(file))
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads `reader` on a blocking thread, handing pieces to the returned channel. A file is
/// read in whole pieces; a pipe (`stream`) hands on whatever each read returns, so that lines
/// written slowly into it (another program's output) are not held back until a piece fills.
fn spawn_reader(
    mut reader: Box<dyn Read + Send>,
    stream: bool,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::Receiver<std::io::Result<Vec<u8>>>,
) {
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let task = tokio::task::spawn_blocking(move || loop {
        let mut buf = Vec::with_capacity(PIECE);
        let read = if stream {
            buf.resize(PIECE, 0);
            reader.read(&mut buf).inspect(|&n| buf.truncate(n))
        } else {
            // `take` + `read_to_end` fills the piece without zeroing it first.
            (&mut reader).take(PIECE as u64).read_to_end(&mut buf)
        };
        match read {
            Ok(0) => return,
            Ok(_) => {
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
    (task, rx)
}

/// Replays `path` into `out` until the end of the file, shutdown, or `out` says stop.
pub(crate) async fn run(
    path: &Path,
    max_record_bytes: usize,
    out: &mut impl Output,
    stats: &SourceStats,
    shutdown: &Shutdown,
) -> Result<End, Error> {
    let (reading, mut rx) = spawn_reader(open(path)?, path.as_os_str() == "-");
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
            Some(Err(source)) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        framer
            .push_bytes(bytes::Bytes::from(piece), &mut frames)
            .expect("newline framing has no framing errors");
        let mut stop = None;
        for f in frames.drain(..) {
            line_no += 1;
            match f {
                Frame::KeepAlive => {}
                Frame::Oversized(n) => {
                    SourceStats::add(&stats.oversized, 1);
                    tracing::warn!(
                        line = line_no,
                        bytes = n,
                        "skipped a line longer than the record limit"
                    );
                }
                Frame::Record(bytes) if stop.is_none() => {
                    if let Message::Record(frame) = message::read(bytes, false, stats) {
                        if out.send(frame).await == Flow::Stop {
                            stop = Some(End::Stopped);
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
            break End::Exhausted;
        }
    };
    drop(rx);
    reading.abort();
    Ok(end)
}
