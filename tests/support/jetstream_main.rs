//! `jetstream-standin`: the Jetstream stand-in as a process, for the benchmark.
//!
//! Serves `--events N` synthetic events (the 152 real ones as templates, each with its own
//! account and `time_us`, made as they are sent) on `/subscribe`, as fast as the client takes
//! them (or `--rate` per second per connection), compressed with Jetstream's dictionary when
//! the client asks for `compress=true`. Cursor replay works as in the tests. Runs until killed.
//!
//! ```text
//! jetstream-standin --events N [--port 0] [--rate R] [--first-time-us T (default: an hour ago)] [--step-us S]
//! ```
//!
//! Stdout line 1 is `LISTENING 127.0.0.1:PORT`; line 2 is how fast this machine's stand-in
//! compresses (`ENCODER events_per_s=…`), so a harness can tell whether it could be the
//! bottleneck.

#[path = "jetstream.rs"]
mod jetstream;
#[path = "zstd_dict.rs"]
mod zstd_dict;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: jetstream-standin --events N [--port P (0 = any free port)] [--rate EVENTS_PER_S (0 = as fast as taken)] [--first-time-us T] [--step-us S]";

struct Args {
    port: u16,
    events: usize,
    rate: u64,
    first_time_us: i64,
    step_us: i64,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        port: 0,
        events: 0,
        rate: 0,
        // An hour ago: recent enough for any cursor check, and 16 digits like every real one.
        first_time_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_micros() as i64
            - 3_600_000_000,
        step_us: 10,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let num = |name: &str, v: String| v.parse::<i64>().map_err(|e| format!("{name}: {e}"));
        match arg.as_str() {
            "--port" => a.port = num("--port", value("--port")?)? as u16,
            "--events" => a.events = num("--events", value("--events")?)? as usize,
            "--rate" => a.rate = num("--rate", value("--rate")?)? as u64,
            "--first-time-us" => {
                a.first_time_us = num("--first-time-us", value("--first-time-us")?)?
            }
            "--step-us" => a.step_us = num("--step-us", value("--step-us")?)?.max(1),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.events == 0 {
        return Err(format!("--events is required\n{USAGE}"));
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let addr = format!("127.0.0.1:{}", args.port).parse().unwrap();
        let s = jetstream::Standin::start_on(addr, Vec::new()).await;
        s.serve_synthetic(args.events, args.first_time_us, args.step_us);
        s.set_rate(args.rate);
        println!("LISTENING {}", s.addr());
        let enc = zstd_dict::DictEncoder::new(&jetstream::dictionary());
        let sample = jetstream::synthetic_events(20_000, 0, 1);
        let started = Instant::now();
        let bytes: usize = sample.iter().map(|e| enc.compress(e).len()).sum();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "ENCODER events_per_s={:.0} ratio={:.2}",
            sample.len() as f64 / secs,
            sample.iter().map(|e| e.len()).sum::<usize>() as f64 / bytes as f64
        );
        let _ = std::io::stdout().flush();
        std::future::pending::<()>().await;
    });
    ExitCode::SUCCESS
}
