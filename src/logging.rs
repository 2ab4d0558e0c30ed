//! Logs go to stderr, as text for people or JSON lines for log shippers (`--log-format`).
//! `TWEETPIPE_LOG` sets the level (`error`, `warn`, `info`, `debug`, `trace`; default info).

use tracing::level_filters::LevelFilter;

use crate::cli::LogFormat;

pub fn init(format: LogFormat) {
    let level = std::env::var("TWEETPIPE_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
