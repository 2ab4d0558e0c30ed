//! The command line: clap's definitions ([`args`]), then, per command, the checks that turn
//! flags into the configuration the library takes ([`produce`], [`jetstream`], [`consume`],
//! [`kafka`], [`credentials`]) and the administrative commands' output ([`topic`], [`group`],
//! [`rules`], [`help`]).
//! Nothing below this module knows clap, or names a flag: what a user should change on the
//! command line after an error is said here ([`advice`]).

mod advice;
mod args;
mod consume;
mod credentials;
mod group;
mod help;
mod jetstream;
mod kafka;
mod metrics;
mod output;
mod produce;
mod rules;
mod topic;
mod units;

pub use advice::advice;
pub use args::*;

use crate::error::{Error, Result};
use crate::logging;

/// Runs one command to completion.
pub fn run(cli: Cli) -> Result<()> {
    // Generated from the clap definitions; no logging, no runtime.
    match &cli.command {
        Command::Completions { shell } => return help::print_completions(*shell),
        Command::Man { command } => return help::print_man(command),
        _ => {}
    }
    logging::init(match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tweetpipe")
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    // Configuration first: nothing connects until all of it is known to be usable.
    let result = match cli.command {
        Command::Produce(args) => {
            let cfg = produce::config(&args)?;
            runtime.block_on(crate::produce::run(cfg))
        }
        Command::Consume(args) => {
            let cfg = consume::config(&args)?;
            runtime.block_on(crate::consume::run(cfg))
        }
        Command::Topic(cmd) => runtime.block_on(topic::run(cmd)),
        Command::Group(cmd) => runtime.block_on(group::run(cmd)),
        Command::Rules(cmd) => runtime.block_on(rules::run(cmd)),
        Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
    };
    // Do not wait for detached tasks (e.g. a blocking stdin read) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}
