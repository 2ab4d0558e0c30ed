//! `twitter-standin`: the Twitter stand-in as a process, for benchmarks.
//!
//! Serves a file of line-delimited tweet JSON as `POST /1.1/statuses/filter.json`, as fast as the
//! client takes it, to every connection (signed with `Creds::test()`), either `--repeat N` times
//! or forever. Runs until killed.
//!
//! ```text
//! twitter-standin --file tweets.jsonl [--port 0] [--repeat N] [--gzip]
//! ```
//!
//! Stdout line 1 is `LISTENING 127.0.0.1:PORT`, so a harness can use `--port 0` and read the port.

#[path = "twitter.rs"]
mod twitter;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use twitter::{Action, Conn, Creds, StandIn};

const USAGE: &str = "usage: twitter-standin --file PATH [--port P (0 = any free port)] [--repeat N (0 or absent = forever)] [--gzip]";

struct Args {
    port: u16,
    file: PathBuf,
    /// `None` streams forever.
    repeat: Option<u64>,
    gzip: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut port = 0;
    let mut file = None;
    let mut repeat = None;
    let mut gzip = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--file" => file = Some(PathBuf::from(value("--file")?)),
            "--repeat" => {
                let n: u64 = value("--repeat")?
                    .parse()
                    .map_err(|e| format!("--repeat: {e}"))?;
                repeat = (n > 0).then_some(n);
            }
            "--gzip" => gzip = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let file = file.ok_or("--file is required")?;
    Ok(Args {
        port,
        file,
        repeat,
        gzip,
    })
}

/// One record per non-blank line, without its line ending (the stand-in frames records itself).
fn load_records(path: &PathBuf) -> Result<Vec<Vec<u8>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let records: Vec<Vec<u8>> = data
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect();
    if records.is_empty() {
        return Err(format!("{}: no records", path.display()));
    }
    Ok(records)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("twitter-standin: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let records = match load_records(&args.file) {
        Ok(records) => Arc::new(records),
        Err(message) => {
            eprintln!("twitter-standin: {message}");
            return ExitCode::FAILURE;
        }
    };
    let count = records.len();
    let actions = match args.repeat {
        None => vec![Action::RecordsForever(records)],
        // Repeats share the one loaded copy through the Arc.
        Some(n) => (0..n)
            .map(|_| Action::Records(Arc::clone(&records)))
            .collect(),
    };
    let conn = if args.gzip {
        Conn::ok(actions).gzip()
    } else {
        Conn::ok(actions)
    };

    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = match StandIn::start_on(addr, vec![conn], Creds::test()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("twitter-standin: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("LISTENING {}", server.addr());
    let _ = std::io::stdout().flush();
    eprintln!(
        "twitter-standin: serving {count} records from {} {}{} at {}",
        args.file.display(),
        args.repeat
            .map_or("forever".to_string(), |n| format!("{n} times")),
        if args.gzip { " (gzip)" } else { "" },
        server.url()
    );

    // Serve until killed; the server lives as long as `server` does.
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
