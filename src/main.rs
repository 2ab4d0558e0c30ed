//! The `tweetpipe` binary: parse the command line, run, turn the outcome into an exit code.
//! Everything else lives in the library.

use clap::Parser;

fn main() {
    let cli = tweetpipe::cli::Cli::parse();
    if matches!(cli.command, tweetpipe::cli::Command::Consume(_)) {
        tune_glibc_malloc();
    }
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
/// (scripts/bench-static); with our memcpy too (below), 95% and, for consume on one core,
/// 104%. dlmalloc has one lock for all threads, which consume on two cores spent ~a quarter of
/// its CPU on (0.6-0.73x glibc); each thread's cache of small blocks in front of it
/// (`tweetpipe::alloc::thread_cache`) brings that to 0.99-1.00x. glibc builds keep the system allocator,
/// tuned by [`tune_glibc_malloc`].
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: tweetpipe::alloc::thread_cache::ThreadCache<dlmalloc::GlobalDlmalloc> =
    tweetpipe::alloc::thread_cache::ThreadCache(dlmalloc::GlobalDlmalloc);

/// The static build's `memcpy` and `memmove` (see `tweetpipe::alloc::memcopy`): musl's pay a
/// `rep movsq` start-up on every small copy. Defining both here keeps musl's out of the link
/// (its `memmove` calls into its `memcpy`).
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
mod musl_memcopy {
    /// # Safety
    /// C's `memcpy` contract.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        unsafe { tweetpipe::alloc::memcopy::copy(dst, src, n) };
        dst
    }

    /// # Safety
    /// C's `memmove` contract.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        unsafe { tweetpipe::alloc::memcopy::copy(dst, src, n) };
        dst
    }
}

/// glibc builds: keep freed memory for reuse instead of handing it back to the kernel at once.
///
/// rskafka reads every fetch response (1-2.5 MiB) into a fresh zeroed buffer and copies its
/// records into a second one. glibc's defaults serve such buffers from the heap once the first
/// is freed, but trim the heap whenever more than twice that is free at its top, so the next
/// fetch faults the same pages in again: ~80,000 page faults per 100,000 tweets consumed,
/// ~9% of a core. With a fixed 4 MiB mmap threshold (fetch-sized buffers stay on the heap) and
/// a 32 MiB trim threshold: ~3,000 faults, 73-77k -> 80-84k tweets/s on one core, peak RSS
/// +1-2 MiB (scripts/bench-consume's one-core run, 2026-11-22). Setting either value turns off
/// glibc's own adjustment of both, hence both.
///
/// `consume` only: `produce` gains nothing from it and pays in memory, since the 32 MiB trim
/// threshold applies to each of glibc's per-thread arenas and produce allocates on several
/// threads. Over HTTP: peak RSS 62-67 MiB with the tuning, 51-52 MiB without, 10,000 against
/// 27,000-48,000 page faults, throughput within the run-to-run spread (six alternating runs
/// each of scripts/bench-produce's HTTP run, 2026-11-22).
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
