//! The static musl build's memory: its global allocator and its `memcpy`/`memmove`. Compiled
//! only for musl (and for the tests); glibc builds use the system allocator and glibc's copies.
//!
//! Why not musl's own: musl's malloc maps and unmaps every large buffer, and made `produce`
//! and `consume` much slower than the glibc build; dlmalloc (a pure-Rust port the standard
//! library itself uses on wasm) with a per-thread cache of small blocks in front of it
//! ([`thread_cache`]) runs at glibc's speed. musl's x86_64 `memcpy` pays a `rep movsq`
//! start-up on every small copy; [`memcopy`] does what glibc's does at the sizes that matter.
//! The figures are in docs/performance.md.
//!
//! Everything here is private: the one allocator instance is defined below, and the two copy
//! functions are exported under their C names only in the musl build.

#[cfg(target_arch = "x86_64")]
mod memcopy;
mod thread_cache;

#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: thread_cache::ThreadCache<dlmalloc::GlobalDlmalloc> =
    thread_cache::ThreadCache::new(dlmalloc::GlobalDlmalloc);

/// Defining both keeps musl's out of the link (its `memmove` calls into its `memcpy`).
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
mod exports {
    /// # Safety
    /// C's `memcpy` contract.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        unsafe { super::memcopy::copy(dst, src, n) };
        dst
    }

    /// # Safety
    /// C's `memmove` contract.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        unsafe { super::memcopy::copy(dst, src, n) };
        dst
    }
}
