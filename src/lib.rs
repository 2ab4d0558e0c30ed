//! tweetpipe: read a tweet stream at its own pace into Kafka (`produce`), and read Kafka at
//! ours (`consume`). `main.rs` only parses arguments and maps errors to exit codes; everything
//! else lives in these modules:
//!
//! - [`twitter`]: the stream client (OAuth or bearer token, HTTP, framing, back-off), the v2
//!   stream's rules, and file replay;
//! - [`pipeline`]: the bounded channel, intake, stats, shutdown, and the `produce` and
//!   `consume` commands;
//! - [`kafka`]: connecting, topics, partitioning, the batching producer, group offsets and
//!   topic administration on a connection of our own;
//! - [`enrich`]: what the consumer adds to each tweet;
//! - [`sink`]: durable, rotating JSON-lines output and its crash recovery;
//! - [`spill`]: the producer's disk spill, for when Kafka is slow or away.

pub mod alloc;
pub mod backoff;
pub mod cli;
pub mod consume;
pub mod enrich;
pub mod error;
pub mod kafka;
pub mod logging;
pub mod produce;
pub mod shutdown;
pub mod sink;
pub mod source;

pub use error::{Error, Result};

/// Runs one command to completion.
pub fn run(cli: cli::Cli) -> Result<()> {
    // Generated from the clap definitions; no logging, no runtime.
    match &cli.command {
        cli::Command::Completions { shell } => return cli::print_completions(*shell),
        cli::Command::Man { command } => return cli::print_man(command),
        _ => {}
    }
    logging::init(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tweetpipe")
        // Threads come and go (the blocking pool); each hands its cached blocks back.
        .on_thread_stop(alloc::thread_cache::release_thread_cache)
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    let result = match cli.command {
        cli::Command::Produce(args) => runtime.block_on(produce::run(*args)),
        cli::Command::Consume(args) => runtime.block_on(consume::run(*args)),
        cli::Command::Topic(cmd) => runtime.block_on(kafka::admin::run(cmd)),
        cli::Command::Rules(cmd) => runtime.block_on(source::twitter::rules::run(cmd)),
        cli::Command::Completions { .. } | cli::Command::Man { .. } => {
            unreachable!("handled above")
        }
    };
    // Do not wait for detached tasks (e.g. a blocking stdin read) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}
