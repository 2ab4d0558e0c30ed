//! `--output postgres://…`: the records in PostgreSQL, exactly once, without trusting
//! Kafka's commit.
//!
//! The encoder ([`copy`]) turns each record into a binary COPY tuple on its partition's task;
//! [`PgSink::write`] only appends them to per-partition buffers. Each flush is one
//! transaction: the tweets are COPYed straight into `tweets` (when one of them is there
//! already, the COPY fails on the primary key and the batch goes through a temporary table
//! and `INSERT … ON CONFLICT (id) DO NOTHING` instead: a tweet written twice to the topic is
//! stored once), control messages into `deletes` (a delete removes its tweet, now and when the
//! tweet comes again; a scrub_geo strips the location from the user's tweets), unusable
//! records into `errors`, and the `offsets` table (group, topic, partition → next offset)
//! moves with a compare-and-set from the value this instance read or last stored. A set that
//! fails means another consumer stored that partition further since: the whole transaction is
//! rolled back and the partitions are given up ([`crate::sink::Error::Taken`]), so a stale
//! instance never moves an offset back nor stores a record twice. On every assignment reading
//! resumes from these offsets ([`PgSink::resume`]); the Kafka commit that follows a flush is
//! kept for lag tools only.
//!
//! A database that cannot be reached (or that fails in a way that passes: shutting down,
//! out of connections, a serialization failure) is retried with back-off for as long as it
//! takes, logged at each attempt; the buffered rows wait, and the writer waiting here stops
//! fetching, so memory stays bounded. A record the server refuses (a value it cannot take)
//! is found by halving the batch ([`Conn::screen`]) and goes to `errors`. Anything else the
//! server refuses (permissions, a schema it does not like) ends the run with its message. The schema is created
//! and migrated here ([`schema`]); the connection and its password in [`target`], TLS in
//! [`tls`].

pub(crate) mod copy;
mod paced;
mod schema;
pub(crate) mod target;
#[cfg(test)]
mod tests;
pub(crate) mod tls;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use self::copy::{Rows, DELETE_COLUMNS, ERROR_COLUMNS, HEADER, TRAILER, TWEET_COLUMNS};
use self::paced::Paced;
use self::target::{Host, Target};
use super::{Encoded, Encoder, Error, Kind, Sink, SinkFuture};
use crate::backoff::Retry;

/// The buffered rows are flushed at this size whatever `--pg-batch-rows` says, so that a
/// batch of unusually large records stays within memory.
const BATCH_BYTES: usize = 64 << 20;

/// Everything the sink needs, checked by the command line.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) target: Target,
    /// rustls for the connection; `None`: `sslmode=disable`.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// The schema holding the tables (created when missing).
    pub(crate) schema: String,
    /// A flush as soon as this many records are buffered (besides every commit interval).
    pub(crate) batch_rows: usize,
}

impl Config {
    /// `url` is `--output`; errors are for the user to fix (usage errors).
    pub(crate) fn new(
        url: &str,
        schema: String,
        batch_rows: usize,
        ca_file: Option<&Path>,
    ) -> Result<Config, String> {
        let target = Target::parse(url, &target::Env::process())?;
        if ca_file.is_some() && target.sslmode == target::SslMode::Disable {
            return Err("--pg-ca-file is given but the URL says sslmode=disable; give sslmode=verify-full (or remove --pg-ca-file)".into());
        }
        let tls = tls::client_config(target.sslmode, ca_file)?;
        Ok(Config {
            target,
            tls,
            schema,
            batch_rows,
        })
    }
}

/// The rows buffered since the last flush, of one partition, one list per table: a chunk
/// per write, each allocated at its exact size (a growing buffer would hold up to twice the
/// rows' size, and copy them as it grows).
#[derive(Default)]
struct Pending {
    /// The tweets' ids (the batch's checks against stored deletes and scrub_geo use them).
    ids: Vec<String>,
    scrubs: bool,
    tweets: Vec<Bytes>,
    deletes: Vec<Bytes>,
    errors: Vec<Bytes>,
}

/// One flush's work: each table's COPY stream (empty when it has no rows) and the offsets to
/// move.
struct Batch {
    ids: Vec<String>,
    /// Whether it holds a scrub_geo.
    scrubs: bool,
    tweets: Vec<Bytes>,
    deletes: Vec<Bytes>,
    errors: Vec<Bytes>,
    changes: Vec<Change>,
}

/// A partition's stored offset moving from `from` (`None`: no row yet) to `to`.
#[derive(Debug, Clone, Copy)]
struct Change {
    partition: i32,
    from: Option<i64>,
    to: i64,
}

pub(crate) struct PgSink {
    config: Config,
    group: String,
    topic: String,
    conn: Option<Conn>,
    /// Each owned partition's next offset in the offsets table, as this instance last read
    /// or stored it (`None`: no row yet).
    stored: BTreeMap<i32, Option<i64>>,
    pending: BTreeMap<i32, Pending>,
    /// The COPY of the batch being gathered, when one runs.
    streaming: Option<Streaming>,
    rows: usize,
    bytes: usize,
    /// Test hook (always `None` in release builds): sleep this long between the COPYs and
    /// the COMMIT.
    pause_before_commit: Option<Duration>,
    /// Test hook (always `None` in release builds): each streamed COPY waits this long before
    /// it sends anything, as a slow server would: the writer then waits for room.
    stream_stall: Option<Duration>,
}

impl PgSink {
    /// Nothing connects yet: the first [`Sink::resume`] does (and retries until it can).
    pub(crate) fn new(config: Config, group: &str, topic: &str) -> Self {
        PgSink {
            config,
            group: group.to_string(),
            topic: topic.to_string(),
            conn: None,
            stored: BTreeMap::new(),
            pending: BTreeMap::new(),
            streaming: None,
            rows: 0,
            bytes: 0,
            pause_before_commit: test_hook("TWEETPIPE_TEST_PG_PAUSE_BEFORE_COMMIT_MS"),
            stream_stall: test_hook("TWEETPIPE_TEST_PG_STREAM_STALL_MS"),
        }
    }

    /// The database as logs and errors show it (no password).
    pub(crate) fn shown(&self) -> String {
        self.config.target.shown()
    }

    /// The open connection, connecting (and migrating the schema, the first time) if there
    /// is none.
    async fn connection(&mut self) -> Result<&mut Conn, Fail> {
        if self.conn.is_none() {
            let conn = Conn::open(&self.config).await?;
            tracing::info!(database = %self.shown(), schema = %self.config.schema, "connected to PostgreSQL");
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }

    /// After a failed attempt: `Ok` (having waited) when it may pass, else the error.
    async fn failed(&mut self, fail: Fail, retry: &mut Retry, doing: &str) -> Result<(), Error> {
        self.conn = None;
        let e = match fail {
            Fail::Sink(e) => return Err(e),
            Fail::Db(e) if transient(&e) => e,
            Fail::Db(e) => return Err(self.permanent(e, doing)),
        };
        let wait = retry.next_wait().unwrap_or(Duration::from_secs(30));
        tracing::warn!(
            database = %self.shown(),
            error = %crate::error::chain(&e),
            attempt = retry.attempts(),
            retry_in = ?wait,
            "{doing}: PostgreSQL is unavailable; retrying (nothing is lost meanwhile)"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn permanent(&self, e: tokio_postgres::Error, doing: &str) -> Error {
        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
        let advice = match code.as_str() {
            "28P01" => format!(
                " (the password came from {}; set it in PGPASSWORD or a pgpass file)",
                self.config.target.password_from
            ),
            "28000" => " (the server's pg_hba.conf does not let this user in from here)".into(),
            "3D000" => " (create the database first, or name another in the URL)".into(),
            "42501" => format!(
                " (grant the user the rights on schema {:?} and its tables, or have someone who has them run tweetpipe once to create the tables)",
                self.config.schema
            ),
            _ if tls_refused(&e) => " (check sslmode and --pg-ca-file: the server's certificate must lead to that CA, and with verify-full name the host of the URL)".into(),
            _ => String::new(),
        };
        Error::Store {
            what: format!("PostgreSQL {}: {doing}{advice}", self.shown()),
            usage: code.starts_with("28") || code == "3D000" || tls_refused(&e),
            source: Box::new(e),
        }
    }

    /// Moves the buffered rows into one flush's COPY streams.
    fn take_batch(&mut self, next: &BTreeMap<i32, i64>) -> Batch {
        let changes = next
            .iter()
            .filter_map(|(&partition, &to)| {
                let from = self.stored.get(&partition).copied().flatten();
                (from != Some(to)).then_some(Change {
                    partition,
                    from,
                    to,
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut scrubs = false;
        let mut tweets = Vec::new();
        let mut deletes = Vec::new();
        let mut errors = Vec::new();
        for (_, p) in std::mem::take(&mut self.pending) {
            ids.extend(p.ids);
            scrubs |= p.scrubs;
            tweets.extend(p.tweets);
            deletes.extend(p.deletes);
            errors.extend(p.errors);
        }
        for stream in [&mut tweets, &mut deletes, &mut errors] {
            if !stream.is_empty() {
                stream.insert(0, Bytes::from_static(HEADER));
                stream.push(Bytes::from_static(TRAILER));
            }
        }
        self.rows = 0;
        self.bytes = 0;
        Batch {
            ids,
            scrubs,
            tweets,
            deletes,
            errors,
            changes,
        }
    }

    /// Drops the COPY under way, and its transaction with its connection.
    fn abort_streaming(&mut self) {
        if let Some(streaming) = self.streaming.take() {
            streaming.task.abort();
        }
    }

    async fn resume_owned(&mut self, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, Error> {
        self.abort_streaming();
        let mut retry = retry();
        let (group, topic) = (self.group.clone(), self.topic.clone());
        let found = loop {
            let attempt = async {
                let conn = self.connection().await?;
                Ok::<_, Fail>(conn.read_offsets(&group, &topic, partitions).await?)
            };
            match attempt.await {
                Ok(found) => break found,
                Err(e) => {
                    self.failed(e, &mut retry, "reading the stored offsets")
                        .await?
                }
            }
        };
        self.stored = partitions
            .iter()
            .map(|p| (*p, found.get(p).copied()))
            .collect();
        self.pending.clear();
        self.rows = 0;
        self.bytes = 0;
        if !found.is_empty() {
            tracing::info!(database = %self.shown(), offsets = ?found, "resuming from the offsets stored in PostgreSQL");
        }
        Ok(found)
    }

    async fn flush_all(&mut self, next: &BTreeMap<i32, i64>) -> Result<(), Error> {
        let mut batch = self.take_batch(next);
        if batch.changes.is_empty()
            && batch.tweets.is_empty()
            && batch.deletes.is_empty()
            && batch.errors.is_empty()
        {
            return Ok(());
        }
        let mut retry = retry();
        // After a failed attempt the COMMIT may have happened all the same (the connection
        // dropped before its answer): the next attempt looks first.
        let mut look_first = false;
        let (group, topic) = (self.group.clone(), self.topic.clone());
        let mut streamed = Streamed::No;
        if let Some(streaming) = self.streaming.take() {
            if let Some((conn, how)) = streaming.finish(batch.ids.len()).await {
                self.conn = Some(conn);
                streamed = how;
            }
        }
        loop {
            let pause = self.pause_before_commit;
            let attempt = async {
                let conn = self.connection().await?;
                let streamed = std::mem::replace(&mut streamed, Streamed::No);
                conn.store(&batch, &group, &topic, look_first, pause, streamed)
                    .await
            };
            match attempt.await {
                Ok(()) => break,
                Err(Fail::Db(e)) if refused_record(&e) => {
                    tracing::warn!(
                        database = %self.shown(),
                        error = %crate::error::chain(&e),
                        "PostgreSQL refused a record of the batch; finding it, to store it in errors"
                    );
                    self.conn = None;
                    let screened = async {
                        let conn = self.connection().await?;
                        conn.screen(&batch).await
                    };
                    match screened.await {
                        Ok(b) => batch = b,
                        Err(e) => {
                            self.failed(e, &mut retry, "storing a batch").await?;
                            look_first = true;
                        }
                    }
                }
                Err(e) => {
                    self.failed(e, &mut retry, "storing a batch").await?;
                    look_first = true;
                }
            }
        }
        for c in &batch.changes {
            self.stored.insert(c.partition, Some(c.to));
        }
        Ok(())
    }
}

impl Sink for PgSink {
    fn encoder(&self) -> Arc<dyn Encoder> {
        Arc::new(Rows)
    }

    fn resume<'a>(&'a mut self, partitions: &'a [i32]) -> SinkFuture<'a, BTreeMap<i32, i64>> {
        Box::pin(self.resume_owned(partitions))
    }

    fn write(&mut self, batch: &Encoded, range: std::ops::Range<usize>) -> Result<(), Error> {
        let start = |i: usize| if i == 0 { 0 } else { batch.entries[i - 1].end };
        let mut sizes = [0usize; 3];
        for e in &batch.entries[range.clone()] {
            sizes[e.kind.index()] += e.end;
        }
        for i in range.clone() {
            sizes[batch.entries[i].kind.index()] -= start(i);
        }
        let mut chunks: [Vec<u8>; 3] = sizes.map(Vec::with_capacity);
        let pending = self.pending.entry(batch.partition).or_default();
        for i in range.clone() {
            let tuple = batch.get(i);
            match batch.entries[i].kind {
                Kind::Tweet => pending.ids.push(copy::first_text(tuple).to_string()),
                Kind::Control => pending.scrubs |= copy::first_text(tuple) == "scrub_geo",
                Kind::Error => {}
            }
            chunks[batch.entries[i].kind.index()].extend_from_slice(tuple);
        }
        let [tweets, deletes, errors] = chunks;
        if !tweets.is_empty() {
            let tweets = Bytes::from(tweets);
            let any_before = self.pending.values().any(|p| !p.tweets.is_empty());
            if self.streaming.is_none() && !any_before {
                if let Some(conn) = self.conn.take() {
                    self.streaming = Some(Streaming::start(conn, self.stream_stall));
                }
            }
            if let Some(streaming) = &mut self.streaming {
                streaming.push(&tweets);
            }
            let pending = self.pending.entry(batch.partition).or_default();
            self.bytes += tweets.len();
            pending.tweets.push(tweets);
        }
        let pending = self.pending.entry(batch.partition).or_default();
        for (to, chunk) in [
            (&mut pending.deletes, deletes),
            (&mut pending.errors, errors),
        ] {
            if !chunk.is_empty() {
                self.bytes += chunk.len();
                to.push(Bytes::from(chunk));
            }
        }
        self.rows += range.len();
        Ok(())
    }

    fn wants_flush(&self) -> bool {
        self.rows >= self.config.batch_rows || self.bytes >= BATCH_BYTES
    }

    fn room(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(async {
            if let Some(streaming) = &mut self.streaming {
                streaming.pieces.room().await;
            }
            Ok(())
        })
    }

    fn flush<'a>(&'a mut self, next: &'a BTreeMap<i32, i64>) -> SinkFuture<'a, ()> {
        Box::pin(self.flush_all(next))
    }

    fn committed(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        self.abort_streaming();
        self.conn = None;
        Box::pin(async { Ok(()) })
    }

    fn revoke(&mut self, partitions: &[i32]) -> Result<(), Error> {
        // Its COPY may hold rows of these partitions: it goes, and what remains is stored
        // the ordinary way.
        self.abort_streaming();
        for p in partitions {
            if let Some(dropped) = self.pending.remove(p) {
                let n: usize = [dropped.tweets, dropped.deletes, dropped.errors]
                    .iter()
                    .flatten()
                    .map(Bytes::len)
                    .sum();
                self.bytes = self.bytes.saturating_sub(n);
            }
            self.stored.remove(p);
        }
        if self.pending.is_empty() {
            self.rows = 0;
            self.bytes = 0;
        }
        Ok(())
    }
}

/// A test hook: milliseconds from the environment variable `name`, in debug builds only
/// (release builds never read it).
fn test_hook(name: &str) -> Option<Duration> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

fn retry() -> Retry {
    Retry::new(Duration::from_millis(250), Duration::from_secs(30))
}

/// An attempt's failure: a database error (which may pass) or a verdict of the sink's own.
enum Fail {
    Db(tokio_postgres::Error),
    Sink(Error),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

/// The server refused a value of a record (not the statement, not the connection): data
/// exceptions (SQLSTATE class 22: a malformed value, a character the encoding has not) and
/// limits (class 54: an index entry too large, e.g. an absurdly long hashtag).
fn refused_record(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("54"))
}

/// The TLS handshake failed (a certificate that does not verify, a server without TLS under
/// sslmode=require): the configuration's to fix.
fn tls_refused(e: &tokio_postgres::Error) -> bool {
    e.code().is_none() && e.to_string().starts_with("error performing TLS handshake")
}

/// Whether trying again may succeed: the connection failed or broke, or the server said so
/// (SQLSTATE classes 08 connection, 40 transaction rollback, 53 insufficient resources, 57P
/// shutting down or starting, 58 system error).
fn transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let c = code.code();
            ["08", "40", "53", "57P", "58"]
                .iter()
                .any(|p| c.starts_with(p))
        }
        None => {
            let text = e.to_string();
            e.is_closed()
                || text.starts_with("error connecting to server")
                || text.starts_with("error communicating with the server")
                || text.starts_with("timeout waiting for server")
        }
    }
}

/// The raw record without its location (v1.1 `geo`, `coordinates`, `place`; v2 `data.geo`
/// and `includes.places`).
const SCRUBBED: &str = "(t.raw::jsonb - 'geo' - 'coordinates' - 'place' \
     #- '{data,geo}' #- '{includes,places}')::text";

/// One connection, its temporary tables and its prepared statements.
struct Conn {
    client: Client,
    s: Statements,
    /// Whether `deletes` holds a scrub_geo: until one comes, the batches need not look for
    /// tweets it covers.
    scrubs: bool,
}

struct Statements {
    copy_direct: Statement,
    copy_tweets: Statement,
    copy_deletes: Statement,
    copy_errors: Statement,
    insert_deletes: Statement,
    insert_tweets: Statement,
    apply_deletes: Statement,
    scrub_geo: Statement,
    scrub_new: Statement,
    deleted_before: Statement,
    cas: Statement,
    claim: Statement,
    read: Statement,
}

impl Conn {
    async fn open(config: &Config) -> Result<Conn, Fail> {
        let mut pg = tokio_postgres::Config::new();
        let t = &config.target;
        pg.user(&t.user)
            .dbname(&t.dbname)
            .port(t.port)
            .application_name("tweetpipe")
            .connect_timeout(t.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(60));
        match &t.host {
            Host::Tcp(h) => pg.host(h),
            Host::Socket(dir) => pg.host_path(dir),
        };
        if let Some(p) = &t.password {
            pg.password(p.0.as_bytes());
        }
        let mut client = match &config.tls {
            None => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                let (client, connection) = pg.connect(NoTls).await?;
                tokio::spawn(drive(connection));
                client
            }
            Some(tls) => {
                pg.ssl_mode(match t.sslmode {
                    target::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                    _ => tokio_postgres::config::SslMode::Require,
                });
                let (client, connection) = pg.connect(tls::Tls(tls.clone())).await?;
                tokio::spawn(drive(connection));
                client
            }
        };
        match schema::migrate(&mut client, &config.schema).await {
            Ok(0) => tracing::info!(schema = %config.schema, version = schema::latest(), "created the tables"),
            Ok(v) if v < schema::latest() => tracing::info!(schema = %config.schema, from = v, to = schema::latest(), "migrated the tables"),
            Ok(_) => {}
            Err(schema::Problem::Db(e)) => return Err(Fail::Db(e)),
            Err(schema::Problem::Newer(v)) => {
                return Err(Fail::Sink(Error::StoreState(format!(
                    "PostgreSQL {}: schema {:?} is at version {v}, newer than this tweetpipe knows ({}); upgrade tweetpipe",
                    t.shown(),
                    config.schema,
                    schema::latest()
                ))))
            }
        }
        let s = schema::quote(&config.schema);
        client
            .batch_execute(&format!(
                "CREATE TEMPORARY TABLE IF NOT EXISTS tp_tweets (LIKE {s}.tweets INCLUDING DEFAULTS INCLUDING COMPRESSION) ON COMMIT DELETE ROWS;
                 CREATE TEMPORARY TABLE IF NOT EXISTS tp_deletes (LIKE {s}.deletes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
            ))
            .await?;
        let stmts = Statements {
            copy_direct: client
                .prepare(&format!("COPY {s}.tweets ({TWEET_COLUMNS}) FROM STDIN (FORMAT binary)"))
                .await?,
            copy_tweets: client
                .prepare(&format!("COPY pg_temp.tp_tweets ({TWEET_COLUMNS}) FROM STDIN (FORMAT binary)"))
                .await?,
            copy_deletes: client
                .prepare(&format!("COPY pg_temp.tp_deletes ({DELETE_COLUMNS}) FROM STDIN (FORMAT binary)"))
                .await?,
            copy_errors: client
                .prepare(&format!("COPY {s}.errors ({ERROR_COLUMNS}) FROM STDIN (FORMAT binary)"))
                .await?,
            insert_deletes: client
                .prepare(&format!(
                    "INSERT INTO {s}.deletes ({DELETE_COLUMNS}) SELECT {DELETE_COLUMNS} FROM pg_temp.tp_deletes"
                ))
                .await?,
            insert_tweets: client
                .prepare(&format!(
                    "INSERT INTO {s}.tweets ({TWEET_COLUMNS}) SELECT {TWEET_COLUMNS} FROM pg_temp.tp_tweets \
                     ON CONFLICT (id) DO NOTHING"
                ))
                .await?,
            // A tweet whose delete is stored (before, or in this batch) does not stay.
            deleted_before: client
                .prepare(&format!(
                    "DELETE FROM {s}.tweets WHERE id IN \
                     (SELECT tweet_id FROM {s}.deletes WHERE tweet_id = ANY($1::text[]))"
                ))
                .await?,
            apply_deletes: client
                .prepare(&format!(
                    "DELETE FROM {s}.tweets t USING pg_temp.tp_deletes d \
                     WHERE d.kind = 'delete' AND d.tweet_id = t.id"
                ))
                .await?,
            // Twitter's scrub_geo: the user's tweets up to that id lose their location, those
            // stored and those that come later (another partition may bring them after the
            // scrub). Ids are decimal: a shorter one is smaller.
            scrub_geo: client
                .prepare(&format!(
                    "UPDATE {s}.tweets t SET raw = {SCRUBBED} \
                     FROM pg_temp.tp_deletes d \
                     WHERE d.kind = 'scrub_geo' AND t.user_id = d.user_id AND t.id ~ '^[0-9]+$' \
                       AND (length(t.id), t.id) <= (length(d.up_to_id), d.up_to_id)"
                ))
                .await?,
            scrub_new: client
                .prepare(&format!(
                    "UPDATE {s}.tweets t SET raw = {SCRUBBED} \
                     FROM {s}.deletes d \
                     WHERE d.kind = 'scrub_geo' AND d.user_id = t.user_id AND t.id = ANY($1::text[]) \
                       AND t.id ~ '^[0-9]+$' AND (length(t.id), t.id) <= (length(d.up_to_id), d.up_to_id)"
                ))
                .await?,
            cas: client
                .prepare(&format!(
                    "UPDATE {s}.offsets o SET next_offset = v.next, updated_at = now() \
                     FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS v(p, expected, next) \
                     WHERE o.consumer_group = $1 AND o.topic = $2 AND o.kafka_partition = v.p \
                       AND o.next_offset = v.expected \
                     RETURNING o.kafka_partition"
                ))
                .await?,
            claim: client
                .prepare(&format!(
                    "INSERT INTO {s}.offsets (consumer_group, topic, kafka_partition, next_offset) \
                     SELECT $1, $2, v.p, v.next FROM unnest($3::int[], $4::bigint[]) AS v(p, next) \
                     ON CONFLICT DO NOTHING RETURNING kafka_partition"
                ))
                .await?,
            read: client
                .prepare(&format!(
                    "SELECT kafka_partition, next_offset FROM {s}.offsets \
                     WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3::int[])"
                ))
                .await?,
        };
        let scrubs = client
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {s}.deletes WHERE kind = 'scrub_geo')"),
                &[],
            )
            .await?
            .get(0);
        Ok(Conn {
            client,
            s: stmts,
            scrubs,
        })
    }

    async fn read_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, tokio_postgres::Error> {
        let rows = self
            .client
            .query(&self.s.read, &[&group, &topic, &partitions])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// One batch in one transaction (see the module documentation). `streamed`: whether its
    /// tweets were COPYed already, while the batch was gathered ([`Streaming`]), in the
    /// transaction still open on this connection.
    async fn store(
        &mut self,
        batch: &Batch,
        group: &str,
        topic: &str,
        look_first: bool,
        pause: Option<Duration>,
        streamed: Streamed,
    ) -> Result<(), Fail> {
        if look_first && !batch.changes.is_empty() {
            let partitions: Vec<i32> = batch.changes.iter().map(|c| c.partition).collect();
            let now = self.read_offsets(group, topic, &partitions).await?;
            if batch
                .changes
                .iter()
                .all(|c| now.get(&c.partition) == Some(&c.to))
            {
                tracing::info!("the batch of the interrupted attempt was committed");
                return Ok(());
            }
        }
        let (c, s) = (&self.client, &self.s);
        // Straight into the table, as fast as a bulk load can be; when a tweet is there
        // already (the producer wrote it twice, a replay), through a temporary table and ON
        // CONFLICT instead.
        let direct = match streamed {
            Streamed::No => {
                c.batch_execute("BEGIN").await?;
                if batch.tweets.is_empty() {
                    None
                } else {
                    c.batch_execute("SAVEPOINT direct").await?;
                    Some(copy(c, &s.copy_direct, &batch.tweets).await)
                }
            }
            Streamed::Copied => Some(Ok(0)),
            Streamed::Duplicate(e) => Some(Err(e)),
        };
        match direct {
            None => {}
            Some(Ok(_)) => c.batch_execute("RELEASE SAVEPOINT direct").await?,
            Some(Err(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                c.batch_execute("ROLLBACK TO SAVEPOINT direct").await?;
                copy(c, &s.copy_tweets, &batch.tweets).await?;
                c.execute(&s.insert_tweets, &[]).await?;
            }
            Some(Err(e)) => return Err(e.into()),
        }
        if !batch.deletes.is_empty() {
            copy(c, &s.copy_deletes, &batch.deletes).await?;
            c.execute(&s.insert_deletes, &[]).await?;
            c.execute(&s.apply_deletes, &[]).await?;
            c.execute(&s.scrub_geo, &[]).await?;
        }
        if !batch.tweets.is_empty() {
            c.execute(&s.deleted_before, &[&batch.ids]).await?;
            if self.scrubs || batch.scrubs {
                c.execute(&s.scrub_new, &[&batch.ids]).await?;
            }
        }
        if !batch.errors.is_empty() {
            copy(c, &s.copy_errors, &batch.errors).await?;
        }
        let taken = move_offsets(c, s, batch, group, topic).await?;
        if !taken.is_empty() {
            c.batch_execute("ROLLBACK").await?;
            return Err(Fail::Sink(Error::Taken {
                partitions: taken,
                group: group.to_string(),
                topic: topic.to_string(),
            }));
        }
        if let Some(pause) = pause.filter(|_| !batch.tweets.is_empty()) {
            tracing::warn!(?pause, "test hook: rows copied, pausing before COMMIT");
            tokio::time::sleep(pause).await;
        }
        c.batch_execute("COMMIT").await?;
        self.scrubs |= batch.scrubs;
        Ok(())
    }
}

/// Which table a screened stream of tuples goes to.
#[derive(Clone, Copy)]
enum Table {
    Tweets,
    Deletes,
    Errors,
}

impl Conn {
    /// `batch` without the records the server refuses, which become rows of `errors` (with
    /// the server's reason). Each table's tuples are loaded in a transaction that is rolled
    /// back, halving the refused part under savepoints until single records remain: a few
    /// dozen statements for a refused record, only when a batch had one.
    async fn screen(&mut self, batch: &Batch) -> Result<Batch, Fail> {
        let c = &self.client;
        c.batch_execute("BEGIN").await?;
        let mut out = Batch {
            ids: Vec::new(),
            scrubs: batch.scrubs,
            tweets: Vec::new(),
            deletes: Vec::new(),
            errors: Vec::new(),
            changes: batch.changes.clone(),
        };
        let mut refused = Vec::new();
        for (table, stream) in [
            (Table::Tweets, &batch.tweets),
            (Table::Deletes, &batch.deletes),
            (Table::Errors, &batch.errors),
        ] {
            let tuples: Vec<Bytes> = stream
                .iter()
                .filter(|b| !b.is_empty() && b.as_ref() != HEADER && b.as_ref() != TRAILER)
                .flat_map(copy::split_tuples)
                .collect();
            let bad = bisect(c, &self.s, table, &tuples).await?;
            let mut kept = Vec::new();
            for (i, tuple) in tuples.into_iter().enumerate() {
                let Some((_, why)) = bad.iter().find(|(at, _)| *at == i) else {
                    kept.push(tuple);
                    continue;
                };
                let f = copy::tuple_fields(&tuple);
                let reason = format!("PostgreSQL refused the record: {why}");
                let (value, partition, offset) = match table {
                    Table::Tweets => (f[23], f[21], f[22]),
                    // jsonb: past its version byte.
                    Table::Deletes => (f[4].map(|m| &m[1..]), f[5], f[6]),
                    Table::Errors => {
                        tracing::error!(reason = %why, "PostgreSQL refused an error row; it is not stored");
                        continue;
                    }
                };
                tracing::warn!(reason = %why, "a record PostgreSQL refused goes to errors");
                refused.push(Bytes::from(copy::refused(
                    &reason,
                    value.unwrap_or_default(),
                    partition.unwrap_or_default(),
                    offset.unwrap_or_default(),
                )));
            }
            if let Table::Tweets = table {
                out.ids = kept
                    .iter()
                    .map(|t| copy::first_text(t).to_string())
                    .collect();
            }
            let to = match table {
                Table::Tweets => &mut out.tweets,
                Table::Deletes => &mut out.deletes,
                Table::Errors => &mut out.errors,
            };
            *to = kept;
        }
        c.batch_execute("ROLLBACK").await?;
        out.errors.extend(refused);
        for stream in [&mut out.tweets, &mut out.deletes, &mut out.errors] {
            if !stream.is_empty() {
                stream.insert(0, Bytes::from_static(HEADER));
                stream.push(Bytes::from_static(TRAILER));
            }
        }
        Ok(out)
    }
}

/// The tuples of `tuples` the server refuses in `table`, each with the server's message.
async fn bisect(
    c: &Client,
    s: &Statements,
    table: Table,
    tuples: &[Bytes],
) -> Result<Vec<(usize, String)>, tokio_postgres::Error> {
    let mut bad = Vec::new();
    let mut parts = vec![(0, tuples.len())];
    while let Some((a, b)) = parts.pop() {
        if a == b {
            continue;
        }
        c.batch_execute("SAVEPOINT screen").await?;
        let mut stream = vec![Bytes::from_static(HEADER)];
        stream.extend(tuples[a..b].iter().cloned());
        stream.push(Bytes::from_static(TRAILER));
        let loaded = match table {
            Table::Tweets => match copy(c, &s.copy_tweets, &stream).await {
                Ok(_) => c.execute(&s.insert_tweets, &[]).await.map(|_| ()),
                Err(e) => Err(e),
            },
            Table::Deletes => match copy(c, &s.copy_deletes, &stream).await {
                Ok(_) => c.execute(&s.insert_deletes, &[]).await.map(|_| ()),
                Err(e) => Err(e),
            },
            Table::Errors => copy(c, &s.copy_errors, &stream).await.map(|_| ()),
        };
        match loaded {
            Ok(()) => c.batch_execute("RELEASE SAVEPOINT screen").await?,
            Err(e) if refused_record(&e) => {
                c.batch_execute("ROLLBACK TO SAVEPOINT screen; RELEASE SAVEPOINT screen")
                    .await?;
                if b - a == 1 {
                    let why = e
                        .as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string());
                    bad.push((a, why));
                } else {
                    let m = (a + b) / 2;
                    parts.push((m, b));
                    parts.push((a, m));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(bad)
}

/// Whether a batch's tweets were COPYed while it was gathered.
enum Streamed {
    No,
    /// All of them, into the table, under the savepoint `direct`.
    Copied,
    /// The COPY failed (on the primary key: a tweet stored already), under the savepoint.
    Duplicate(tokio_postgres::Error),
}

/// The COPY of a batch's tweets into `tweets`, while the writer gathers the batch: a task
/// that owns the connection, begins the transaction and streams each chunk [`PgSink::write`]
/// hands it, so that the database loads one batch while the next is fetched and enriched,
/// instead of each waiting for the other. The flush ends the COPY, gets the connection back
/// and finishes the transaction ([`Conn::store`]); any failure but a duplicate, and the batch
/// is stored again the ordinary way.
///
/// At most [`STREAM_AHEAD`] pieces wait for the connection; past that the writer waits
/// ([`Paced::room`]), and with it the fetches: the database sets the pace. Were the
/// backlog unbounded, each flush would wait for the server to work it off while nothing is
/// fetched or enriched, and the two would take turns instead of running side by side.
struct Streaming {
    pieces: Paced<Bytes>,
    task: tokio::task::JoinHandle<(Conn, Result<u64, tokio_postgres::Error>)>,
}

/// The pieces of a chunk the streaming task gets: the connection copies each message into
/// its write buffer, which would otherwise grow to the size of the largest chunk and stay so.
const PIECE: usize = 256 * 1024;
/// How many pieces may wait for the connection: 4 MiB, a few dozen milliseconds of the
/// server's work.
const STREAM_AHEAD: usize = 16;

impl Streaming {
    /// `stall`: a test hook's wait before anything is sent.
    fn start(conn: Conn, stall: Option<Duration>) -> Self {
        let (pieces, mut rx) = tokio::sync::mpsc::channel::<Bytes>(STREAM_AHEAD);
        let task = tokio::spawn(async move {
            if let Some(stall) = stall {
                tokio::time::sleep(stall).await;
            }
            let copied = async {
                conn.client.batch_execute("BEGIN; SAVEPOINT direct").await?;
                let sink = conn.client.copy_in::<_, Bytes>(&conn.s.copy_direct).await?;
                let mut sink = std::pin::pin!(sink);
                sink.feed(Bytes::from_static(HEADER)).await?;
                while let Some(piece) = rx.recv().await {
                    sink.feed(piece).await?;
                }
                sink.feed(Bytes::from_static(TRAILER)).await?;
                sink.as_mut().finish().await
            }
            .await;
            (conn, copied)
        });
        Streaming {
            pieces: Paced::new(pieces),
            task,
        }
    }

    /// Hands `chunk` over, in pieces.
    fn push(&mut self, chunk: &Bytes) {
        for piece in pieces(chunk) {
            self.pieces.push(piece);
        }
    }

    /// Ends the COPY: the connection (in the transaction), and how the COPY went; `None` when
    /// the connection is lost.
    /// `rows`: how many tuples were handed over; a COPY that stored any other number (a
    /// piece lost on the way) is rolled back like a failed one.
    async fn finish(mut self, rows: usize) -> Option<(Conn, Streamed)> {
        self.pieces.room().await;
        drop(self.pieces);
        let (conn, copied) = self.task.await.ok()?;
        match copied {
            Ok(n) if n == rows as u64 => Some((conn, Streamed::Copied)),
            Ok(n) => {
                tracing::error!(copied = n, rows, "the streamed COPY stored a different number of rows than it was given; storing the batch again");
                conn.client.batch_execute("ROLLBACK").await.ok()?;
                Some((conn, Streamed::No))
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Some((conn, Streamed::Duplicate(e)))
            }
            Err(e) => {
                tracing::debug!(error = %e, "the streamed COPY failed; storing the batch again");
                conn.client.batch_execute("ROLLBACK").await.ok()?;
                Some((conn, Streamed::No))
            }
        }
    }
}

/// The compare-and-set of the batch's offsets; the partitions whose stored offset was not
/// what this instance expected.
async fn move_offsets(
    tx: &Client,
    s: &Statements,
    batch: &Batch,
    group: &str,
    topic: &str,
) -> Result<Vec<i32>, tokio_postgres::Error> {
    let mut done = Vec::new();
    let (update, claim): (Vec<Change>, Vec<Change>) =
        batch.changes.iter().partition(|c| c.from.is_some());
    if !update.is_empty() {
        let p: Vec<i32> = update.iter().map(|c| c.partition).collect();
        let expected: Vec<i64> = update.iter().map(|c| c.from.unwrap_or(0)).collect();
        let next: Vec<i64> = update.iter().map(|c| c.to).collect();
        for row in tx
            .query(&s.cas, &[&group, &topic, &p, &expected, &next])
            .await?
        {
            done.push(row.get::<_, i32>(0));
        }
    }
    if !claim.is_empty() {
        let p: Vec<i32> = claim.iter().map(|c| c.partition).collect();
        let next: Vec<i64> = claim.iter().map(|c| c.to).collect();
        for row in tx.query(&s.claim, &[&group, &topic, &p, &next]).await? {
            done.push(row.get::<_, i32>(0));
        }
    }
    Ok(batch
        .changes
        .iter()
        .map(|c| c.partition)
        .filter(|p| !done.contains(p))
        .collect())
}

async fn copy(
    client: &Client,
    statement: &Statement,
    chunks: &[Bytes],
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(statement).await?;
    let mut sink = std::pin::pin!(sink);
    for chunk in chunks {
        feed(sink.as_mut(), chunk).await?;
    }
    sink.as_mut().finish().await
}

/// Sends `chunk` in [`pieces`].
async fn feed(
    mut sink: std::pin::Pin<&mut tokio_postgres::CopyInSink<Bytes>>,
    chunk: &Bytes,
) -> Result<(), tokio_postgres::Error> {
    for piece in pieces(chunk) {
        sink.feed(piece).await?;
    }
    Ok(())
}

/// `chunk` in pieces of at most [`PIECE`] bytes (without copying).
fn pieces(chunk: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    (0..chunk.len())
        .step_by(PIECE)
        .map(|at| chunk.slice(at..(at + PIECE).min(chunk.len())))
}

/// Runs a connection until it closes; its error, if any, shows in the next call's.
async fn drive<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "PostgreSQL connection ended");
    }
}
