//! Where consumed records end up: JSON lines in rotating files (the default) or on stdout.
//!
//! The sink owns durability. The consumer commits Kafka offsets only after `sync` returned,
//! and a rotated file is renamed to its final name only after that commit, so a file without
//! the `.inprogress` suffix never holds a record beyond the committed offsets. After a crash,
//! only `.inprogress` files can hold records past them; `recover` finds those records so the
//! consumer resumes after them instead of writing them twice.

pub mod files;


use std::io::Write;

pub use files::DirSink;

/// The three outputs: enriched tweets, deletes and other control messages, and records we
/// could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Tweets,
    Deletes,
    Errors,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Tweets, Stream::Deletes, Stream::Errors];

    pub fn name(self) -> &'static str {
        match self {
            Stream::Tweets => "tweets",
            Stream::Deletes => "deletes",
            Stream::Errors => "errors",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub enum Sink {
    Dir(Box<DirSink>),
    /// `--output -`: every line to stdout; durability is the reader's business.
    Stdout(std::io::BufWriter<std::io::Stdout>),
}

impl Sink {
    /// Appends one line (without its newline).
    pub fn write(&mut self, stream: Stream, line: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Dir(d) => d.write(stream, line),
            Sink::Stdout(w) => {
                w.write_all(line)?;
                w.write_all(b"\n")
            }
        }
    }

    /// Everything written so far is durable when this returns.
    pub fn sync(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Dir(d) => d.sync(),
            Sink::Stdout(w) => w.flush(),
        }
    }

    /// Called after the offsets covering everything synced were committed: files rotated
    /// before that get their final names.
    pub fn committed(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Dir(d) => d.finalize_rotated(),
            Sink::Stdout(_) => Ok(()),
        }
    }

    /// Clean stop, after the final sync and commit: close and finalize every file.
    pub fn close(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Dir(d) => d.close(),
            Sink::Stdout(w) => w.flush(),
        }
    }
}
