//! The `tweetpipe` binary: parse the command line, run, turn the outcome into an exit code.
//! Everything else lives in the library.

use clap::Parser;

fn main() {
    let cli = tweetpipe::cli::Cli::parse();
    if matches!(cli.command, tweetpipe::cli::Command::Consume(_)) {
        tune_glibc_malloc();
    }
    let code = match tweetpipe::cli::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // The logger may not be up yet (configuration errors), so print directly.
            eprintln!("tweetpipe: error: {e}");
            if let Some(advice) = tweetpipe::cli::advice(&e) {
                eprintln!("tweetpipe: {advice}");
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// glibc builds, `consume` only: keep freed memory for reuse instead of handing it back to
/// the kernel at once. rskafka reads every fetch response into a fresh zeroed buffer and
/// copies its records into a second one; glibc's defaults serve such buffers from the heap
/// but trim the heap whenever more than twice that is free at its top, so the next fetch
/// faults the same pages in again. A fixed 4 MiB mmap threshold (fetch-sized buffers stay on
/// the heap) and a 32 MiB trim threshold stop that (docs/performance.md); setting either value
/// turns off glibc's own adjustment of both, hence both. `produce` gains nothing from it and
/// pays in memory, since the trim threshold applies to each of glibc's per-thread arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_glibc_malloc() {
    // SAFETY: mallopt only changes two allocator parameters; it is called before any thread
    // is started. A refusal (0) leaves glibc's defaults, which are correct, only slower.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_glibc_malloc() {}
