//! What the administrative commands print (topic descriptions, rules, man pages): one way to
//! write it, and one answer to a closed stdout. `tweetpipe rules list | head` closing the pipe
//! early is not an error: the reader has what it wanted, and the command stops quietly.

use std::io::Write;

use crate::error::{Error, Result};

/// Writes `bytes` to stdout and flushes.
pub(crate) fn print(bytes: impl AsRef<[u8]>) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(bytes.as_ref())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::runtime(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}
