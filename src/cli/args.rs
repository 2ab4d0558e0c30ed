//! Every flag, its environment variable and its default, in one place (clap's derive).
//!
//! The names here are a contract (scripts, systemd units and tests depend on them), and the
//! help text is the first manual a user reads, so each flag says what it does and when to
//! change it. What the flags mean together is checked in the per-command modules, which turn
//! them into the configuration the library takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::units::{parse_duration, parse_size};

/// Collect a live tweet stream into Apache Kafka without ever falling behind it.
///
/// `produce` only reads the stream and hands the raw records to Kafka; `consume` reads Kafka at
/// its own pace and does the work. Run both on one VM, or scale out with Kafka itself.
#[derive(Debug, Parser)]
#[command(
    name = "tweetpipe",
    // The commit comes from build.rs (`git rev-parse --short HEAD`, or "unknown").
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TWEETPIPE_GIT_COMMIT"), ")"),
    about,
    long_about,
    propagate_version = true
)]
pub struct Cli {
    /// Log format on stderr: human-readable `text`, or one JSON object per line (`json`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TWEETPIPE_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the Twitter stream (or a file) and produce every raw record to a Kafka topic.
    ///
    /// The stream reader never waits on Kafka: records pass through a bounded in-memory
    /// channel to a batching producer, and a record counts as delivered only once every
    /// in-sync replica has acknowledged it.
    ///
    /// Credentials come from the environment (TWITTER_BEARER_TOKEN; with --api 1.1,
    /// TWITTER_CONSUMER_KEY, TWITTER_CONSUMER_SECRET, TWITTER_ACCESS_TOKEN,
    /// TWITTER_ACCESS_TOKEN_SECRET) or from --env-file.
    ///
    /// The stream (--api v2, the default) is `GET /2/tweets/search/stream`, filtered by the
    /// rules stored on Twitter (manage them with `tweetpipe rules`, or let --track set one rule
    /// per term). A reconnect asks for backfill of the gap and drops the tweets it repeats.
    ///
    /// Exit codes: 0 clean stop; 2 usage or configuration error; 1 runtime failure or any
    /// accepted record not delivered.
    Produce(Box<ProduceArgs>),

    /// Read the raw tweets from Kafka at our own pace, enrich them (text, entities, language,
    /// sentiment) and write JSON lines, exactly once across crashes, restarts and instances.
    ///
    /// Instances started with the same --group split the topic's partitions between them
    /// (Kafka's consumer-group protocol, which librdkafka consumers of the group take part in
    /// too); when one stops or dies, the others take its partitions over. Output is made
    /// durable first and the group's offsets are committed after, in Kafka itself, so
    /// kafka-consumer-groups, kcat and `tweetpipe group describe` see position and lag.
    /// What a killed instance wrote past its last commit is reconciled before anyone goes on,
    /// so the finished files of all instances together hold every record exactly once.
    ///
    /// Instances may share an --output directory (on one machine): each one's files carry its
    /// own name (the --instance-id, else host name and a random suffix).
    Consume(Box<ConsumeArgs>),

    /// Create or describe the topic (partitions, replication factor, retention).
    #[command(subcommand)]
    Topic(TopicCommand),

    /// List consumer groups, or describe one: its members, their partitions, committed
    /// offsets and lag.
    #[command(subcommand)]
    Group(GroupCommand),

    /// Manage the API v2 filtered stream's rules on Twitter (list, add, delete, sync from a
    /// file). The bearer token comes from TWITTER_BEARER_TOKEN or --env-file.
    ///
    /// Every change can be tried first with --dry-run: Twitter validates it and reports what
    /// would happen (meta.summary, and each rule's error) without changing anything.
    #[command(subcommand)]
    Rules(RulesCommand),

    /// Print a shell completion script to stdout, e.g.
    /// `tweetpipe completions bash > /etc/bash_completion.d/tweetpipe`.
    #[command(hide = true)]
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print a man page (roff) to stdout: `tweetpipe man > tweetpipe.1` for the overview,
    /// `tweetpipe man produce > tweetpipe-produce.1` for one command's page.
    #[command(hide = true)]
    Man {
        /// The command whose page to print (`produce`, `consume`, `topic create`, …); none for
        /// the overview page.
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group. Its instances split the topic's partitions between them, and its
    /// committed offsets (in Kafka) record the position.
    #[arg(
        long,
        default_value = "tweetpipe",
        env = "TWEETPIPE_GROUP",
        help_heading = "Consumer group"
    )]
    pub group: String,

    /// `all`: read every partition, without joining the group: one process that commits as a
    /// simple consumer (tweetpipe's only mode before group membership). Run one such process
    /// per group at most; Kafka refuses its commits while the group has members.
    #[arg(long, value_name = "all", value_parser = ["all"], help_heading = "Consumer group",
          conflicts_with_all = ["assignor", "session_timeout", "heartbeat_interval", "max_poll_interval", "instance_id"])]
    pub assign: Option<String>,

    /// The partition assignors this instance offers, in order of preference: range,
    /// roundrobin, or both. The group uses the first one every member offers, so give every
    /// instance the same list (librdkafka's default is range,roundrobin too).
    #[arg(
        long,
        default_value = "range,roundrobin",
        value_name = "LIST",
        help_heading = "Consumer group"
    )]
    pub assignor: String,

    /// How long the group waits for a silent instance (a crash, a frozen VM, a cut network)
    /// before giving its partitions to the others (session.timeout.ms). Shorter takes over
    /// sooner; too short, and a loaded machine loses members for nothing. The broker bounds
    /// it (Kafka: 6s to 30m by default).
    #[arg(long, default_value = "45s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Consumer group")]
    pub session_timeout: Duration,

    /// How often the instance tells the group it is alive (heartbeat.interval.ms), on a
    /// connection of its own; keep it at most a third of --session-timeout.
    #[arg(long, default_value = "3s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Consumer group")]
    pub heartbeat_interval: Duration,

    /// An instance whose writing makes no progress for this long (a hung disk, say) leaves
    /// the group by itself, so that the others take its partitions instead of waiting behind
    /// its heartbeats (max.poll.interval.ms). Also how long a rebalance waits for members.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION", help_heading = "Consumer group")]
    pub max_poll_interval: Duration,

    /// Static membership (group.instance.id): an instance restarted under the same id within
    /// --session-timeout gets its partitions back without a rebalance, and a clean stop does
    /// not leave the group. Unique per instance; its output files carry it.
    #[arg(
        long,
        env = "TWEETPIPE_INSTANCE_ID",
        value_name = "ID",
        help_heading = "Consumer group"
    )]
    pub instance_id: Option<String>,

    /// Where to start a partition the group has no committed offset for: `committed`
    /// (meaning: earliest), `earliest`, `latest`, or an RFC 3339 time (the first record at or
    /// after it). A partition with a committed offset always goes on from there; to read
    /// again, use a new --group. With --assign all, anything but `committed` re-reads every
    /// partition from there.
    #[arg(
        long,
        default_value = "committed",
        value_name = "committed|earliest|latest|TIME"
    )]
    pub from: String,

    /// Output directory (`-` for JSON lines on stdout). Files: tweets-*.jsonl, deletes-*.jsonl,
    /// errors-*.jsonl; a file being written ends in `.inprogress`.
    ///
    /// Or a PostgreSQL database: postgres://USER@HOST:PORT/DATABASE?sslmode=MODE. tweetpipe
    /// creates the tables (tweets, deletes, errors, offsets; see --pg-schema) and stores each
    /// batch and its offsets in one transaction: exactly once, resuming from the database's
    /// offsets. The password comes from the URL, else PGPASSWORD, else the pgpass file
    /// (PGPASSFILE, default ~/.pgpass); prefer the last two (a URL shows in `ps`). sslmode:
    /// disable, prefer (the default: TLS if offered, unverified), require (TLS, unverified),
    /// verify-ca (the certificate's chain), verify-full (chain and host name).
    #[arg(long, default_value = "./tweets", value_name = "DIR|-|postgres://…")]
    pub output: PathBuf,

    /// PostgreSQL: the schema of tweetpipe's tables, created (and migrated) when missing.
    #[arg(
        long,
        default_value = "public",
        value_name = "NAME",
        help_heading = "PostgreSQL output"
    )]
    pub pg_schema: String,

    /// PostgreSQL: store a batch as soon as this many records wait, besides every
    /// --commit-interval. Larger batches load faster and hold more memory (a tweet's row is
    /// about its raw size plus 1 KiB).
    #[arg(
        long,
        default_value_t = 5000,
        value_name = "N",
        help_heading = "PostgreSQL output"
    )]
    pub pg_batch_rows: usize,

    /// PostgreSQL: the CA certificate (PEM) that signed the server's certificate, for a
    /// private CA; the server's chain is then verified (add sslmode=verify-full to check its
    /// name too). Default: the system's CA store.
    #[arg(long, value_name = "PEM", help_heading = "PostgreSQL output")]
    pub pg_ca_file: Option<PathBuf>,

    /// Stop cleanly after this many records are durably written.
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,

    /// At the end, write what the run did (records written by kind, the committed offsets) to
    /// this file as one JSON object, for scripts and monitoring.
    #[arg(long, value_name = "PATH", env = "TWEETPIPE_SUMMARY_FILE")]
    pub summary_file: Option<PathBuf>,

    /// Serve Prometheus metrics (/metrics), health checks (/healthz, /readyz) and a live page
    /// (/) on HOST:PORT; a port alone listens on 127.0.0.1. Off when not given.
    #[arg(long, value_name = "HOST:PORT", env = "TWEETPIPE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Stop cleanly when no new record arrived for this long.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub idle_exit: Option<Duration>,

    /// Start a new output file once the current one reaches this size.
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub rotate_bytes: u64,

    /// Make output durable (fsync; a PostgreSQL transaction) and commit offsets at least this often.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub commit_interval: Duration,

    /// Print a stats line on stderr this often (0s turns it off).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub stats_interval: Duration,

    /// Longest wait of one fetch for new records (small values make --idle-exit precise; tansu
    /// always waits this long).
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub fetch_wait: Duration,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Every consumer group of the cluster, with its state.
    List(GroupListArgs),
    /// One group: its state and assignor, its members and their partitions, and for every
    /// partition the committed offset, the end of the log and the lag.
    Describe(GroupDescribeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GroupListArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct GroupDescribeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The group to describe.
    #[arg(long, default_value = "tweetpipe", env = "TWEETPIPE_GROUP")]
    pub group: String,
    /// One JSON object on stdout instead of the tables (for scripts and monitoring).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create the topic with its partitions, replication factor and retention settings.
    Create(Box<TopicCreateArgs>),
    /// Show the topic's partitions, leaders, replicas and configuration.
    Describe(Box<TopicDescribeArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct TopicCreateArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[arg(long, default_value_t = 2)]
    pub partitions: i32,
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i16,
    /// How long Kafka keeps records (`retention.ms`), e.g. 7d; default: the broker's.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub retention: Option<Duration>,
    /// Size bound per partition (`retention.bytes`); default: the broker's.
    #[arg(long, value_name = "BYTES")]
    pub retention_bytes: Option<i64>,
    /// Segment size (`segment.bytes`); default: the broker's.
    #[arg(long, value_name = "BYTES")]
    pub segment_bytes: Option<i64>,
    /// Any other topic config, repeatable: `--config cleanup.policy=delete`.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TopicDescribeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Print the rules the stream filters by: id, value and tag, one per line.
    List(RulesArgs),
    /// Add one rule, e.g. `tweetpipe rules add 'cat has:images -is:retweet' --tag cats`.
    Add {
        /// The rule, in Twitter's rule syntax (up to 512 characters on most access levels).
        value: String,
        /// A label echoed in each matching tweet's `matching_rules`.
        #[arg(long)]
        tag: Option<String>,
        /// Send the change with `dry_run=true`: Twitter validates it and reports what would
        /// happen, and changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        api: RulesArgs,
    },
    /// Delete rules, each given by its id (all digits) or by its exact value.
    Delete {
        #[arg(required = true, value_name = "ID|VALUE")]
        rules: Vec<String>,
        /// Send the change with `dry_run=true`: Twitter validates it and reports what would
        /// happen, and changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        api: RulesArgs,
    },
    /// Make the server's rules equal to a file: delete those not in it, add those missing.
    // The long help is a string, not doc lines: its indented TOML example would be compiled
    // as a Rust doctest.
    #[command(long_about = SYNC_LONG_HELP)]
    Sync {
        /// The rules file (TOML, see above).
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// Send the change with `dry_run=true`: Twitter validates it and reports what would
        /// happen, and changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        api: RulesArgs,
    },
}

const SYNC_LONG_HELP: &str =
    "Make the server's rules equal to a file: delete those not in it, add those missing.

The file is TOML, one `[[rule]]` table per rule (`tag` is optional):

    [[rule]]
    value = \"cat has:images -is:retweet\"
    tag = \"cats\"

A rule counts as present when a server rule has the same value and tag.";

/// Where the rules live and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// The v2 stream endpoint; its rules are at this URL plus `/rules`.
    #[arg(long, default_value = V2_STREAM_URL)]
    pub stream_url: String,

    /// Read TWITTER_BEARER_TOKEN from this file of KEY=VALUE lines (the environment wins).
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
}

pub const V1_STREAM_URL: &str = "https://stream.twitter.com/1.1/statuses/filter.json";
pub const V2_STREAM_URL: &str = "https://api.twitter.com/2/tweets/search/stream";

/// Which live network `produce` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// X's streaming API (see --api).
    Twitter,
    /// Bluesky's Jetstream: the whole network's posts (or chosen collections and accounts),
    /// free and without credentials.
    Jetstream,
}

/// Which streaming API `produce` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Api {
    /// `POST statuses/filter`, OAuth 1.0a user context (retired by Twitter).
    #[value(name = "1.1")]
    V1_1,
    /// `GET /2/tweets/search/stream`, bearer token, server-side rules.
    #[value(name = "v2")]
    V2,
}

/// Where the Kafka cluster and topic are.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, comma separated.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT[,…]"
    )]
    pub brokers: String,

    /// Topic holding the raw tweets.
    #[arg(long, env = "TWEETPIPE_TOPIC", default_value = "twitterdata")]
    pub topic: String,

    /// Time limit for one Kafka request (connect, metadata, produce). rskafka itself has none,
    /// so without this a dead broker would hang a call forever.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub kafka_timeout: Duration,

    /// Connect to the brokers over TLS, trusting the system's CA certificates (or
    /// --kafka-ca-file). Managed Kafka (Confluent Cloud, Amazon MSK, Aiven) needs it.
    #[arg(long, env = "KAFKA_TLS", help_heading = "Kafka security")]
    pub kafka_tls: bool,

    /// PEM file of the CA certificates to trust instead of the system's (a private CA, e.g.
    /// Aiven's ca.pem). Implies --kafka-tls.
    #[arg(
        long,
        env = "KAFKA_CA_FILE",
        value_name = "PATH",
        help_heading = "Kafka security"
    )]
    pub kafka_ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS, e.g. Aiven's service.cert. Implies --kafka-tls;
    /// needs --kafka-key-file.
    #[arg(
        long,
        env = "KAFKA_CERT_FILE",
        value_name = "PATH",
        help_heading = "Kafka security"
    )]
    pub kafka_cert_file: Option<PathBuf>,

    /// Private key (PEM) of --kafka-cert-file, e.g. Aiven's service.key.
    #[arg(
        long,
        env = "KAFKA_KEY_FILE",
        value_name = "PATH",
        help_heading = "Kafka security"
    )]
    pub kafka_key_file: Option<PathBuf>,

    /// SASL authentication. Confluent Cloud: plain (username = API key); Amazon MSK:
    /// scram-sha-512; Aiven: scram-sha-256. The password is read from the environment variable
    /// KAFKA_SASL_PASSWORD only, never from a flag. Use it with --kafka-tls: plain sends the
    /// password as is.
    #[arg(
        long,
        env = "KAFKA_SASL_MECHANISM",
        value_enum,
        help_heading = "Kafka security"
    )]
    pub sasl_mechanism: Option<SaslMechanismArg>,

    /// SASL username.
    #[arg(
        long,
        env = "KAFKA_SASL_USERNAME",
        value_name = "NAME",
        help_heading = "Kafka security"
    )]
    pub sasl_username: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanismArg {
    /// PLAIN: username and password as they are (only over TLS).
    Plain,
    /// SCRAM-SHA-256 (RFC 7677): the password never crosses the wire.
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[value(name = "scram-sha-512")]
    ScramSha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
}

#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The network to read: `twitter` (see --api) or `jetstream` (Bluesky, see the Jetstream
    /// options).
    #[arg(long, value_enum, default_value_t = SourceArg::Twitter, env = "TWEETPIPE_SOURCE", help_heading = "Source")]
    pub source: SourceArg,

    /// Streaming API: `v2` (the filtered stream, X's current API) or `1.1` (statuses/filter,
    /// retired by X in 2023; for compatible endpoints and archives that still speak it).
    #[arg(long, value_enum, default_value_t = Api::V2, env = "TWEETPIPE_API", help_heading = "Source")]
    pub api: Api,

    /// Keywords to track, comma separated. With --api v2 (the default): shorthand that, before
    /// connecting, makes the stream's rules one rule per term (value and tag = the term),
    /// deleting any other rule. With --api 1.1: statuses/filter `track`, up to 400.
    #[arg(long, help_heading = "Filter")]
    pub track: Option<String>,

    /// --api 1.1: user ids to follow, comma separated (statuses/filter `follow`, up to 5,000).
    #[arg(long, help_heading = "Filter")]
    pub follow: Option<String>,

    /// --api 1.1: bounding boxes, comma separated longitude,latitude pairs, south-west corner
    /// first (statuses/filter `locations`, up to 25 boxes).
    #[arg(long, help_heading = "Filter")]
    pub locations: Option<String>,

    /// --api 1.1: BCP 47 language codes, comma separated (statuses/filter `language`).
    #[arg(long, help_heading = "Filter")]
    pub language: Option<String>,

    /// --api 1.1: ask for `delimited=length` framing (each message preceded by its length).
    #[arg(long, help_heading = "Filter")]
    pub delimited_length: bool,

    /// Streaming endpoint. `http://` works too (local test servers, proxies). Default:
    /// https://api.twitter.com/2/tweets/search/stream (whose rules are at this URL + `/rules`),
    /// or with --api 1.1 https://stream.twitter.com/1.1/statuses/filter.json.
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub stream_url: Option<String>,

    /// v2: objects to expand into `includes` (comma separated). The default gives the consumer
    /// each tweet's author and the original of a retweet or quote.
    #[arg(
        long,
        default_value = "author_id,referenced_tweets.id",
        help_heading = "API v2"
    )]
    pub expansions: String,

    /// v2: tweet fields to ask for. The default is what the consumer reads: time, author,
    /// language, entities, references, and the full text of long tweets.
    #[arg(
        long,
        default_value = "created_at,author_id,lang,entities,referenced_tweets,note_tweet",
        help_heading = "API v2"
    )]
    pub tweet_fields: String,

    /// v2: user fields to ask for (for the expanded authors).
    #[arg(long, default_value = "username", help_heading = "API v2")]
    pub user_fields: String,

    /// v2: never ask for `backfill_minutes` on reconnect (it is also dropped by itself, after
    /// one warning, when Twitter refuses it for the account).
    #[arg(long, help_heading = "API v2")]
    pub no_backfill: bool,

    /// v2 and Jetstream: how long a produced record's identity is remembered to drop the copies
    /// a reconnect repeats. Default: 10m on v2 (it must exceed the 5 minutes a backfill reaches
    /// back), 3m on Jetstream (it must exceed --jetstream-failover-rewind).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "API v2")]
    pub dedup_window: Option<Duration>,

    /// v2 and Jetstream: at most this many identities are remembered (oldest forgotten first;
    /// ~50 bytes each). Default: 1,000,000 on v2; 500,000 on Jetstream (the window's worth at
    /// Jetstream's per-subscriber rate, ten times the whole network's).
    #[arg(long, value_name = "IDS", help_heading = "API v2")]
    pub dedup_capacity: Option<usize>,

    /// Spend guard: stop cleanly once this many posts were read in the current UTC day (X bills
    /// the v2 stream per post read). Counted across restarts in the state file (in --spill-dir).
    #[arg(long, value_name = "N", help_heading = "Spend guard")]
    pub max_posts_per_day: Option<u64>,

    /// Spend guard: the same for the current UTC month.
    #[arg(long, value_name = "N", help_heading = "Spend guard")]
    pub max_posts_per_month: Option<u64>,

    /// Jetstream instance(s) to read, in fail-over order (repeat the flag or separate with
    /// commas): wss://host/subscribe, or ws:// for a local server or proxy. Default: Bluesky's
    /// public instances.
    #[arg(
        long,
        value_name = "URL",
        value_delimiter = ',',
        help_heading = "Jetstream"
    )]
    pub jetstream_url: Vec<String>,

    /// Collections to read (Jetstream's wantedCollections), comma separated: NSIDs, or
    /// prefixes ending in `.*` (app.bsky.graph.*); at most 100. `all` for every collection.
    /// Identity and account events come whatever the collections.
    #[arg(long, default_value = crate::source::jetstream::subscribe::DEFAULT_COLLECTION, value_name = "NSIDS", help_heading = "Jetstream")]
    pub collections: String,

    /// Accounts to read (Jetstream's wantedDids): comma-separated DIDs, or @FILE with one per
    /// line; at most 10,000. Default: every account.
    #[arg(long, value_name = "DIDS|@FILE", help_heading = "Jetstream")]
    pub dids: Option<String>,

    /// Ask Jetstream for uncompressed frames (by default each frame is zstd with Jetstream's
    /// dictionary: about half the bandwidth).
    #[arg(long, help_heading = "Jetstream")]
    pub jetstream_no_compress: bool,

    /// Where to start reading: `kept` (the cursor kept in the state file in --spill-dir, or
    /// the live tip the first time), `live`, or a cursor (a time_us; Jetstream keeps about a
    /// day).
    #[arg(
        long,
        default_value = "kept",
        value_name = "kept|live|TIME_US",
        help_heading = "Jetstream"
    )]
    pub jetstream_start: String,

    /// How far before the resume position a reconnect or a restart asks Jetstream to start;
    /// the events sent again are dropped by identity.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Jetstream")]
    pub jetstream_rewind: Duration,

    /// The same, when resuming on another instance than the one the position came from (each
    /// instance stamps events with its own clock).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Jetstream")]
    pub jetstream_failover_rewind: Duration,

    /// Read credentials from this file of KEY=VALUE lines (variables already set in the
    /// environment win, as with dotenv).
    #[arg(long, value_name = "PATH", help_heading = "Source")]
    pub env_file: Option<PathBuf>,

    /// Replay line-delimited tweet JSON from a file instead of connecting to Twitter
    /// (`-` for stdin; `.gz` files are decompressed). Backpressure instead of dropping: a file
    /// does not run away.
    #[arg(long, value_name = "PATH", help_heading = "Source")]
    pub from_file: Option<PathBuf>,

    /// Stop cleanly once this many records have been acknowledged by the broker.
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,

    /// At the end, write what the run did (records accepted, delivered, spilled, …) to this
    /// file as one JSON object, for scripts and monitoring.
    #[arg(long, value_name = "PATH", env = "TWEETPIPE_SUMMARY_FILE")]
    pub summary_file: Option<PathBuf>,

    /// Serve Prometheus metrics (/metrics), health checks (/healthz, /readyz) and a live page
    /// (/) on HOST:PORT; a port alone listens on 127.0.0.1. Off when not given.
    #[arg(long, value_name = "HOST:PORT", env = "TWEETPIPE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Partitions of the topic when produce has to create it.
    #[arg(long, default_value_t = 2, help_heading = "Kafka")]
    pub partitions: i32,

    /// Replication factor of the topic when produce has to create it.
    #[arg(long, default_value_t = 1, help_heading = "Kafka")]
    pub replication_factor: i16,

    /// Compression of record batches (pure-Rust codecs only).
    #[arg(long, value_enum, default_value_t = CompressionArg::None, help_heading = "Kafka")]
    pub compression: CompressionArg,

    /// How long a partition's batch may wait for more records before it is sent.
    #[arg(long, default_value = "5ms", value_parser = parse_duration, value_name = "DURATION", help_heading = "Kafka")]
    pub linger: Duration,

    /// Send a partition's batch once it holds this many bytes. No request carries more,
    /// unless one record alone is larger: keep it at or under the broker's message.max.bytes
    /// (1 MiB by default).
    #[arg(long, default_value_t = 512 * 1024, value_name = "BYTES", help_heading = "Kafka")]
    pub batch_bytes: usize,

    /// Produce requests in flight per partition. They are sent in read order; with more than
    /// one, a request that fails and is retried can land after a later one (as with any
    /// non-idempotent Kafka producer). 1 keeps each partition in strict read order.
    #[arg(long, default_value_t = 4, value_name = "N", help_heading = "Kafka")]
    pub max_in_flight: usize,

    /// Give up on a record that the broker has not acknowledged after this long (counted as
    /// failed: exit code 1).
    #[arg(long, default_value = "2m", value_parser = parse_duration, value_name = "DURATION", help_heading = "Kafka")]
    pub delivery_timeout: Duration,

    /// Records the in-memory channel between stream reader and producer can hold.
    #[arg(
        long,
        default_value_t = 20_000,
        value_name = "RECORDS",
        help_heading = "Pipeline"
    )]
    pub channel_capacity: usize,

    /// Bytes the in-memory channel can hold. When it is full, live records go to the disk
    /// spill (or, with the spill off, are dropped and counted); they are never waited for.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES", help_heading = "Pipeline")]
    pub channel_bytes: usize,

    /// Directory of the disk spill: where live records go when Kafka is slow or away, and
    /// where a restart finds them and delivers them first. One producer per directory.
    #[arg(
        long,
        env = "TWEETPIPE_SPILL_DIR",
        default_value = "spill",
        value_name = "DIR",
        help_heading = "Spill"
    )]
    pub spill_dir: PathBuf,

    /// Most disk the spill may use (e.g. 4GiB, 500MB). At the bound, the newest live records
    /// are dropped and counted (what is spilled is kept). 0 turns the spill off: a full channel
    /// then drops.
    #[arg(long, default_value = "4GiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Spill")]
    pub spill_max_bytes: u64,

    /// Size of one spill segment file; a segment is deleted once Kafka acknowledged all of it.
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Spill")]
    pub spill_segment_bytes: u64,

    /// How often spilled data is fsynced: what a power cut can cost at most (a crash of
    /// tweetpipe itself loses nothing spilled).
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Spill")]
    pub spill_fsync_interval: Duration,

    /// Longest record accepted; longer lines are reported and skipped, never buffered (the
    /// broker's message.max.bytes must allow it too).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES", help_heading = "Pipeline")]
    pub max_record_bytes: usize,

    /// Reconnect when no byte (not even a keep-alive) arrived for this long. Default: 30s on
    /// v2 (keep-alives every 20 s: one late one is tolerated, a missing one is not), 90s on
    /// v1.1 (keep-alives every 30 s), 45s on Jetstream (which we ping every third of it: a
    /// quiet stream still answers pings).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "Reconnect")]
    pub stall_timeout: Option<Duration>,

    /// Network errors: the wait grows linearly by this step…
    #[arg(long, default_value = "250ms", value_parser = parse_duration, value_name = "DURATION", help_heading = "Reconnect")]
    pub backoff_network_step: Duration,

    /// …up to this.
    #[arg(long, default_value = "16s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Reconnect")]
    pub backoff_network_max: Duration,

    /// HTTP errors (5xx and the like): the wait starts here and doubles…
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Reconnect")]
    pub backoff_http_initial: Duration,

    /// …up to this.
    #[arg(long, default_value = "320s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Reconnect")]
    pub backoff_http_max: Duration,

    /// HTTP 420/429 (rate limited): the wait starts here and doubles…
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION", help_heading = "Reconnect")]
    pub backoff_rate_limit_initial: Duration,

    /// …up to this (Twitter documents no ceiling; we stop doubling at this).
    #[arg(long, default_value = "16m", value_parser = parse_duration, value_name = "DURATION", help_heading = "Reconnect")]
    pub backoff_rate_limit_max: Duration,

    /// Print a stats line on stderr this often (0s turns it off).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub stats_interval: Duration,

    /// On SIGINT/SIGTERM, wait this long for outstanding acknowledgements before giving up.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_timeout: Duration,
}
