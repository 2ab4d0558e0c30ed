//! The tables, created and migrated by tweetpipe itself: numbered migrations, each applied
//! once, all in one transaction under an advisory lock, so that instances starting together
//! do not race and a failed migration leaves nothing half done. A database already at the
//! latest version needs no DDL privilege at all (a DBA may migrate, and the consumer's role
//! only write rows). What the tables hold is in docs/operations.md.

use tokio_postgres::Client;

/// The schema's tables, `{s}` standing for the quoted schema name. Append, never edit: a
/// database records which versions it has.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1)];

const V1: &str = r#"
CREATE TABLE {s}.tweets (
    id                 text PRIMARY KEY,
    created_at         timestamptz NOT NULL,
    user_id            text NOT NULL,
    user_screen_name   text NOT NULL,
    text               text NOT NULL,
    lang               text NOT NULL,
    lang_source        text NOT NULL,
    sentiment_neg      double precision NOT NULL,
    sentiment_neu      double precision NOT NULL,
    sentiment_pos      double precision NOT NULL,
    sentiment_compound double precision NOT NULL,
    hashtags           text[] NOT NULL,
    mentions           text[] NOT NULL,
    urls               text[] NOT NULL,
    is_retweet         boolean NOT NULL,
    retweeted_id       text,
    is_quote           boolean NOT NULL,
    in_reply_to_id     text,
    quoted_id          text,
    source_format      text NOT NULL,
    source             text NOT NULL,
    kafka_partition    integer NOT NULL,
    kafka_offset       bigint NOT NULL,
    raw                text NOT NULL
);
CREATE INDEX tweets_created_at ON {s}.tweets (created_at);
CREATE INDEX tweets_hashtags ON {s}.tweets USING gin (hashtags);
CREATE INDEX tweets_lang_created_at ON {s}.tweets (lang, created_at);
CREATE INDEX tweets_user_id ON {s}.tweets (user_id);

CREATE TABLE {s}.deletes (
    kind            text NOT NULL,
    tweet_id        text,
    user_id         text,
    up_to_id        text,
    message         jsonb NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deletes_tweet_id ON {s}.deletes (tweet_id) WHERE tweet_id IS NOT NULL;
CREATE INDEX deletes_scrub_geo ON {s}.deletes (user_id) WHERE kind = 'scrub_geo';

CREATE TABLE {s}.errors (
    reason          text NOT NULL,
    value           bytea NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {s}.offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);
"#;

/// The schema version this build writes.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Why the schema cannot be used.
#[derive(Debug)]
pub(crate) enum Problem {
    Db(tokio_postgres::Error),
    /// A newer tweetpipe migrated it further than this one knows.
    Newer(i32),
}

impl From<tokio_postgres::Error> for Problem {
    fn from(e: tokio_postgres::Error) -> Self {
        Problem::Db(e)
    }
}

/// Whether the server can compress with lz4 (it is built with it).
async fn lz4(tx: &tokio_postgres::Transaction<'_>) -> Result<bool, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
            &[],
        )
        .await?
        .is_some())
}

/// Brings `schema` to the latest version; the version it was at.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<i32, Problem> {
    let s = quote(schema);
    let tx = client.transaction().await?;
    // One migrating instance at a time; the others wait and then find nothing to do.
    tx.execute("SELECT pg_advisory_xact_lock(74761016)", &[])
        .await?;
    let exists = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await?
        .is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {s}")).await?;
    }
    let has_table = tx
        .query_opt(
            "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'tweetpipe_migrations'",
            &[&schema],
        )
        .await?
        .is_some();
    if !has_table {
        tx.batch_execute(&format!(
            "CREATE TABLE {s}.tweetpipe_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await?;
    }
    let at: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {s}.tweetpipe_migrations"),
            &[],
        )
        .await?
        .get(0);
    if at > latest() {
        return Err(Problem::Newer(at));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > at) {
        tx.batch_execute(&sql.replace("{s}", &s)).await?;
        if *version == 1 && lz4(&tx).await? {
            // The raw records load faster compressed with lz4 than with pglz, for a little
            // more room (docs/operations.md); servers built without lz4 keep pglz.
            tx.batch_execute(&format!(
                "ALTER TABLE {s}.tweets ALTER COLUMN raw SET COMPRESSION lz4"
            ))
            .await?;
        }
        tx.execute(
            &format!("INSERT INTO {s}.tweetpipe_migrations (version) VALUES ($1)"),
            &[version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(at)
}
