//! Logs go to stderr, as text for people or JSON lines for log shippers (`--log-format`).
//! `TWEETPIPE_LOG` sets the level (`error`, `warn`, `info`, `debug`, `trace`; default info).
//! rskafka narrates every connection at info level; we keep it to warnings unless asked for
//! debug, so the stats line stays readable.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::cli::LogFormat;

pub fn init(format: LogFormat) {
    let level = std::env::var("TWEETPIPE_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let rskafka = if level >= LevelFilter::DEBUG {
        level
    } else {
        level.min(LevelFilter::WARN)
    };
    let filter = Targets::new()
        .with_default(level)
        .with_target("rskafka", rskafka);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_ansi(false))
            .with(filter)
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true))
            .with(filter)
            .try_init(),
    };
}
