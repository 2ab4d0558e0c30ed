//! Turns the stream's bytes, in whatever pieces the network hands them over, into messages.
//!
//! Three framings:
//! - `Crlf`: Twitter's default. A message ends at `\r\n`; a bare `\n` is part of the message
//!   (tweet text may contain newlines).
//! - `Length` (`delimited=length`): each message is preceded by a line holding its length in
//!   bytes, a length that counts the message's own trailing `\r\n`.
//! - `Newline`: files written one JSON per line (`--from-file`); `\r\n` endings are accepted.
//!
//! Blank lines are Twitter's keep-alives: not records, but proof the connection lives. A
//! message longer than the configured maximum is skipped as it streams past and reported
//! with its size, so one absurd line can never make us buffer without bound.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Crlf,
    Length,
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One message, without its terminator.
    Record(Bytes),
    /// A blank line.
    KeepAlive,
    /// A message longer than the maximum was skipped; this many bytes (terminator included).
    Oversized(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// `delimited=length` framing lost sync: a length line that is not a number.
    BadLength(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadLength(s) => write!(
                f,
                "delimited=length framing: expected a length line, got {s:?}"
            ),
        }
    }
}

/// A length line longer than this (its terminator aside) cannot be a length.
const MAX_LENGTH_LINE: usize = 24;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Collecting a line (a message, or in `Length` framing a length line) into `buf`.
    Line,
    /// `Length` framing: collecting a message body of exactly this many bytes into `buf`.
    Body(usize),
    /// Discarding an over-long line until its terminator; `last_cr` remembers a `\r` that
    /// ended the previous piece, in case the `\n` starts the next one.
    SkipLine { skipped: usize, last_cr: bool },
    /// `Length` framing: discarding an over-long body of known size.
    SkipBody { remaining: usize, total: usize },
}

#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    max: usize,
    buf: BytesMut,
    /// How much of `buf` has been searched for a line end already, so a long line arriving
    /// in many small pieces is scanned once, not once per piece.
    scanned: usize,
    state: State,
}

impl Framer {
    pub fn new(framing: Framing, max_record_bytes: usize) -> Self {
        Framer {
            framing,
            max: max_record_bytes.max(1),
            buf: BytesMut::with_capacity(64 * 1024),
            scanned: 0,
            state: State::Line,
        }
    }

    /// Bytes held for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next piece of the stream; complete frames are appended to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        loop {
            match self.state {
                State::SkipLine { skipped, last_cr } => match self.skip_terminator(data, last_cr) {
                    Some(end) => {
                        out.push(Frame::Oversized(skipped + end));
                        data = &data[end..];
                        self.state = State::Line;
                    }
                    None => {
                        let last_cr = data.last().map_or(last_cr, |b| *b == b'\r');
                        self.state = State::SkipLine {
                            skipped: skipped + data.len(),
                            last_cr,
                        };
                        return Ok(());
                    }
                },
                State::SkipBody { remaining, total } => {
                    let n = remaining.min(data.len());
                    data = &data[n..];
                    if n == remaining {
                        out.push(Frame::Oversized(total));
                        self.state = State::Line;
                    } else {
                        self.state = State::SkipBody {
                            remaining: remaining - n,
                            total,
                        };
                        return Ok(());
                    }
                }
                State::Line | State::Body(_) => {
                    self.buf.extend_from_slice(data);
                    return self.drain(out);
                }
            }
        }
    }

    /// Like [`push`](Self::push), for a piece the caller already holds as `Bytes`: complete
    /// messages inside it are handed out as slices of it, without copying; only a message
    /// that straddles pieces is assembled in the internal buffer.
    pub fn push_bytes(&mut self, mut data: Bytes, out: &mut Vec<Frame>) -> Result<(), FrameError> {
        if self.framing == Framing::Length {
            return self.push(&data, out);
        }
        // Finish whatever is pending (a partial line, or a line being skipped) through the
        // copying path, one newline at a time, until nothing is pending.
        while !(matches!(self.state, State::Line) && self.buf.is_empty()) {
            match memchr::memchr(b'\n', &data) {
                Some(p) => {
                    let head = data.split_to(p + 1);
                    self.push(&head, out)?;
                }
                None => return self.push(&data, out),
            }
        }
        let mut start = 0;
        let mut from = 0;
        while let Some(off) = memchr::memchr(b'\n', &data[from..]) {
            let p = from + off;
            let cr = p > start && data[p - 1] == b'\r';
            if self.framing == Framing::Crlf && !cr {
                from = p + 1;
                continue;
            }
            let end = if cr { p - 1 } else { p };
            if end - start > self.max {
                out.push(Frame::Oversized(p + 1 - start));
            } else {
                out.push(classify_line(data.slice(start..end)));
            }
            start = p + 1;
            from = start;
        }
        self.push(&data[start..], out)
    }

    fn drain(&mut self, out: &mut Vec<Frame>) -> Result<(), FrameError> {
        while self.step(out)? {}
        Ok(())
    }

    /// One step of the state machine over what is buffered; `false` when it needs more bytes.
    fn step(&mut self, out: &mut Vec<Frame>) -> Result<bool, FrameError> {
        match self.state {
            State::Body(len) => {
                if self.buf.len() < len {
                    return Ok(false);
                }
                let mut msg = self.buf.split_to(len);
                if msg.ends_with(b"\r\n") {
                    msg.truncate(len - 2);
                } else if msg.ends_with(b"\n") {
                    msg.truncate(len - 1);
                }
                self.state = State::Line;
                out.push(classify_line(msg.freeze()));
                Ok(true)
            }
            State::Line => self.line(out),
            State::SkipBody { remaining, total } => {
                let n = remaining.min(self.buf.len());
                self.buf.advance(n);
                if n < remaining {
                    self.state = State::SkipBody {
                        remaining: remaining - n,
                        total,
                    };
                    return Ok(false);
                }
                out.push(Frame::Oversized(total));
                self.state = State::Line;
                Ok(true)
            }
            State::SkipLine { .. } => {
                unreachable!("drain never skips a line: it clears the buffer first")
            }
        }
    }

    /// A whole line, if one is buffered: a record, or (length framing) the next body's length.
    fn line(&mut self, out: &mut Vec<Frame>) -> Result<bool, FrameError> {
        let Some((content_end, next)) = self.find_line_end() else {
            if self.framing == Framing::Length {
                // Already over the limit, even if a last `\r` is half of the terminator:
                // refused now, as it would be once complete.
                let pending_cr = self.buf.last() == Some(&b'\r');
                if self.buf.len() > MAX_LENGTH_LINE + usize::from(pending_cr) {
                    return Err(length_line_too_long(&self.buf));
                }
                return Ok(false);
            }
            if self.buf.len() > self.max + 2 {
                let last_cr = self.buf.last() == Some(&b'\r');
                self.state = State::SkipLine {
                    skipped: self.buf.len(),
                    last_cr,
                };
                self.buf.clear();
                self.scanned = 0;
            }
            return Ok(false);
        };
        let mut line = self.buf.split_to(next);
        line.truncate(content_end);
        self.scanned = 0;
        if self.framing != Framing::Length {
            if content_end > self.max {
                out.push(Frame::Oversized(next));
            } else {
                out.push(classify_line(line.freeze()));
            }
            return Ok(true);
        }
        // The limit applies to the line however the stream was cut: a piece that ends inside
        // a line longer than this is refused before the line is whole.
        if content_end > MAX_LENGTH_LINE {
            return Err(length_line_too_long(&line));
        }
        // Blank (ASCII whitespace, as for the other framings) is a keep-alive; a line that is
        // not UTF-8 is lost sync like any other non-number.
        let text = line.trim_ascii();
        if text.is_empty() {
            out.push(Frame::KeepAlive);
            return Ok(true);
        }
        let len: usize = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| FrameError::BadLength(String::from_utf8_lossy(&line).into_owned()))?;
        self.state = if len > self.max + 2 {
            // Skipped here, from the buffer, and `push` skips the rest: one piece may hold any
            // number of these, so no recursion and no copy.
            State::SkipBody {
                remaining: len,
                total: len,
            }
        } else {
            State::Body(len)
        };
        Ok(true)
    }

    /// Finds the end of the line in `buf`: (end of content, start of the next line).
    fn find_line_end(&mut self) -> Option<(usize, usize)> {
        let mut from = self.scanned;
        while let Some(off) = memchr::memchr(b'\n', &self.buf[from..]) {
            let p = from + off;
            let cr = p > 0 && self.buf[p - 1] == b'\r';
            match self.framing {
                Framing::Crlf if !cr => from = p + 1,
                _ => return Some((if cr { p - 1 } else { p }, p + 1)),
            }
        }
        self.scanned = self.buf.len();
        None
    }

    /// While skipping an over-long line: the index just past its terminator in `data`.
    fn skip_terminator(&self, data: &[u8], last_cr: bool) -> Option<usize> {
        let mut from = 0;
        while let Some(off) = memchr::memchr(b'\n', &data[from..]) {
            let p = from + off;
            let cr = if p == 0 {
                last_cr
            } else {
                data[p - 1] == b'\r'
            };
            if cr || self.framing != Framing::Crlf {
                return Some(p + 1);
            }
            from = p + 1;
        }
        None
    }
}

/// The error for a length line longer than [`MAX_LENGTH_LINE`]: its start, which is the same
/// whether the line came whole or the stream was cut inside it.
fn length_line_too_long(line: &[u8]) -> FrameError {
    FrameError::BadLength(String::from_utf8_lossy(&line[..MAX_LENGTH_LINE]).into_owned())
}

fn classify_line(line: Bytes) -> Frame {
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        Frame::KeepAlive
    } else {
        Frame::Record(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framing: Framing, max: usize, pieces: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::new(framing, max);
        let mut out = Vec::new();
        for p in pieces {
            f.push(p, &mut out).unwrap();
        }
        out
    }

    fn rec(s: &str) -> Frame {
        Frame::Record(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn push_bytes_gives_the_same_frames_as_push() {
        let long = "z".repeat(30);
        let input = format!("{{\"a\":1}}\r\n\r\n{{\"b\":\"q\nr\"}}\r\n{long}\r\n{{\"c\":3}}\r\n");
        let input = input.as_bytes();
        for framing in [Framing::Crlf, Framing::Newline] {
            let whole = frames(framing, 20, &[input]);
            for i in 0..input.len() {
                for j in i..input.len() {
                    let mut f = Framer::new(framing, 20);
                    let mut out = Vec::new();
                    for piece in [&input[..i], &input[i..j], &input[j..]] {
                        f.push_bytes(Bytes::copy_from_slice(piece), &mut out)
                            .unwrap();
                    }
                    assert_eq!(out, whole, "{framing:?} split at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn crlf_keeps_bare_newlines_inside_records() {
        let out = frames(
            Framing::Crlf,
            100,
            &[b"{\"a\":\"x\ny\"}\r\n\r\n{\"b\":1}\r\n"],
        );
        assert_eq!(
            out,
            vec![rec("{\"a\":\"x\ny\"}"), Frame::KeepAlive, rec("{\"b\":1}")]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let input: &[u8] = b"{\"a\":1}\r\n\r\n{\"b\":\"q\nr\"}\r\n\r\n";
        let whole = frames(Framing::Crlf, 100, &[input]);
        for i in 0..input.len() {
            for j in i..input.len() {
                let got = frames(
                    Framing::Crlf,
                    100,
                    &[&input[..i], &input[i..j], &input[j..]],
                );
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn length_delimited_with_keepalives_and_splits() {
        let m1 = "{\"a\":\"x\r\ny\"}";
        let m2 = "{\"b\":2}";
        let input = format!(
            "\r\n{}\r\n{m1}\r\n\r\n{}\r\n{m2}\r\n",
            m1.len() + 2,
            m2.len() + 2
        );
        let input = input.as_bytes();
        let want = vec![Frame::KeepAlive, rec(m1), Frame::KeepAlive, rec(m2)];
        for i in 0..input.len() {
            assert_eq!(
                frames(Framing::Length, 100, &[&input[..i], &input[i..]]),
                want,
                "split at {i}"
            );
        }
    }

    #[test]
    fn over_long_line_is_skipped_and_reported_then_framing_resumes() {
        let long = "x".repeat(50);
        let input = format!("{{\"ok\":1}}\r\n{long}\r\n{{\"ok\":2}}\r\n");
        let input = input.as_bytes();
        for i in 0..input.len() {
            let mut f = Framer::new(Framing::Crlf, 20);
            let mut out = Vec::new();
            for chunk in [&input[..i], &input[i..]] {
                for piece in chunk.chunks(7) {
                    f.push(piece, &mut out).unwrap();
                    assert!(
                        f.buffered() <= 20 + 2 + 7,
                        "buffered {} at split {i}",
                        f.buffered()
                    );
                }
            }
            assert_eq!(
                out,
                vec![rec("{\"ok\":1}"), Frame::Oversized(52), rec("{\"ok\":2}")],
                "split at {i}"
            );
        }
    }

    #[test]
    fn over_long_length_delimited_body_is_skipped() {
        let long = "y".repeat(40);
        let input = format!("42\r\n{long}\r\n9\r\n{{\"k\":1}}\r\n");
        let out = frames(Framing::Length, 10, &[input.as_bytes()]);
        assert_eq!(out, vec![Frame::Oversized(42), rec("{\"k\":1}")]);
    }

    #[test]
    fn bad_length_line_is_an_error() {
        let mut f = Framer::new(Framing::Length, 100);
        let mut out = Vec::new();
        assert!(matches!(
            f.push(b"{\"not\":\"a length\"}\r\n", &mut out),
            Err(FrameError::BadLength(_))
        ));
    }

    /// Every way of cutting `input` in two gives what pushing it whole gives.
    fn same_when_split(
        framing: Framing,
        max: usize,
        input: &[u8],
    ) -> (Vec<Frame>, Option<FrameError>) {
        let run = |pieces: &[&[u8]]| {
            let mut f = Framer::new(framing, max);
            let mut out = Vec::new();
            for p in pieces {
                if let Err(e) = f.push(p, &mut out) {
                    return (out, Some(e));
                }
            }
            (out, None)
        };
        let whole = run(&[input]);
        for i in 0..input.len() {
            assert_eq!(run(&[&input[..i], &input[i..]]), whole, "split at {i}");
        }
        whole
    }

    #[test]
    fn length_line_over_the_limit_is_refused_however_the_stream_is_cut() {
        // Caught by the framer fuzz target: a 25-character length line (here a valid number)
        // was accepted when it arrived whole but refused when a piece ended inside it.
        let body = "{\"a\":\"length line\"}\r\n";
        let input = format!("{:0>25}\r\n{body}", body.len());
        let (out, err) = same_when_split(Framing::Length, 100, input.as_bytes());
        assert_eq!(out, vec![]);
        // Shown: its first 24 characters.
        assert_eq!(err, Some(FrameError::BadLength(input[..24].to_string())));
        // 24 characters is the limit, even when the `\n` of its `\r\n` comes in the next piece.
        let input = format!("{:0>24}\r\n{body}", body.len());
        let (out, err) = same_when_split(Framing::Length, 100, input.as_bytes());
        assert_eq!((out, err), (vec![rec("{\"a\":\"length line\"}")], None));
    }

    #[test]
    fn length_line_that_is_not_text_is_an_error_not_a_keepalive() {
        let mut f = Framer::new(Framing::Length, 100);
        let mut out = Vec::new();
        assert_eq!(
            f.push(b"\xff\r\n9\r\n{\"k\":1}\r\n", &mut out),
            Err(FrameError::BadLength("\u{fffd}".into()))
        );
        assert_eq!(out, vec![]);
        // ASCII blanks are a keep-alive, as in the other framings.
        let (out, err) = same_when_split(Framing::Length, 100, b" \t\r\n9\r\n{\"k\":1}\r\n");
        assert_eq!((out, err), (vec![Frame::KeepAlive, rec("{\"k\":1}")], None));
    }

    #[test]
    fn many_oversized_bodies_in_one_piece() {
        // Each skipped body used to recurse once (and copy the rest of the piece): a piece
        // holding many of them overflowed the stack.
        let n = 200_000;
        let mut input = "4\r\nabcd".repeat(n);
        input.push_str("3\r\nk\r\n");
        let mut f = Framer::new(Framing::Length, 1);
        let mut out = Vec::new();
        f.push(input.as_bytes(), &mut out).unwrap();
        assert_eq!(out.len(), n + 1);
        assert!(out[..n].iter().all(|fr| *fr == Frame::Oversized(4)));
        assert_eq!(out[n], rec("k"));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn newline_framing_for_files() {
        let out = frames(
            Framing::Newline,
            100,
            &[b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}\n"],
        );
        assert_eq!(
            out,
            vec![
                rec("{\"a\":1}"),
                Frame::KeepAlive,
                rec("{\"b\":2}"),
                rec("{\"c\":3}")
            ]
        );
    }
}
