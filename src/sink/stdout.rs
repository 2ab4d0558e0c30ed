//! `--output -`: every line to stdout. Durability is the reader's business: flushing is all
//! this sink can do, and a closed pipe is an error (the lines were not delivered, so their
//! offsets must not be committed).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use super::line::JsonLines;
use super::{Encoded, Encoder, Error, Sink, SinkFuture};

pub(crate) struct StdoutSink(std::io::BufWriter<std::io::Stdout>);

impl StdoutSink {
    pub(crate) fn new() -> Self {
        StdoutSink(std::io::BufWriter::with_capacity(
            256 * 1024,
            std::io::stdout(),
        ))
    }
}

impl Sink for StdoutSink {
    fn encoder(&self) -> Arc<dyn Encoder> {
        Arc::new(JsonLines)
    }

    fn resume<'a>(&'a mut self, _: &'a [i32]) -> SinkFuture<'a, BTreeMap<i32, i64>> {
        Box::pin(async { Ok(BTreeMap::new()) })
    }

    fn write(&mut self, batch: &Encoded, range: std::ops::Range<usize>) -> Result<(), Error> {
        for i in range {
            self.0
                .write_all(batch.get(i))
                .and_then(|()| self.0.write_all(b"\n"))
                .map_err(Error::io("writing to stdout"))?;
        }
        Ok(())
    }

    fn flush<'a>(&'a mut self, _: &'a BTreeMap<i32, i64>) -> SinkFuture<'a, ()> {
        Box::pin(async { self.0.flush().map_err(Error::io("flushing stdout")) })
    }

    fn committed(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(async { self.0.flush().map_err(Error::io("flushing stdout")) })
    }
}
