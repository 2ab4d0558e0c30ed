//! The `tweetpipe` binary: parse the command line, run, turn the outcome into an exit code.
//! Everything else lives in the library.

use clap::Parser;

fn main() {
    let cli = tweetpipe::cli::Cli::parse();
    let code = match tweetpipe::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // The logger may not be up yet (configuration errors), so print directly.
            eprintln!("tweetpipe: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// The static musl build (scripts/build-static) allocates with dlmalloc, a pure-Rust port that
/// the Rust standard library itself uses on wasm: musl's own malloc maps and unmaps every large
/// buffer, and made `produce` 3x and `consume` 2x slower than the glibc build (560,000 page
/// faults instead of 10,000 for 100,000 tweets). With dlmalloc: 87% and 75% of glibc
/// (scripts/bench-static). glibc builds keep the system allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
