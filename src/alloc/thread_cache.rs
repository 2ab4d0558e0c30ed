//! A per-thread cache of small freed blocks, in front of the static build's allocator.
//!
//! Why: the static musl build allocates with dlmalloc (see [`super`]), which has one lock for
//! every thread. Enriching a tweet makes many small allocations (strings of the output record,
//! VADER's tokens), so `consume` on two cores lost much of its CPU to that lock, well behind
//! glibc (docs/performance.md). Most of those blocks are freed by the thread that
//! made them, soon after, so each thread keeps its freed small blocks on free lists of its own
//! and hands them out again without taking the lock.
//!
//! How, and what keeps it safe:
//! - Sizes up to [`MAX_SIZE`] with alignment up to 16 fall in 16-byte classes; a class's block
//!   always comes from the inner allocator at the class's full size and alignment, so any block
//!   of a class can serve any request of that class, on any thread (a block freed on another
//!   thread joins that thread's list). Everything else goes straight to the inner allocator.
//! - A free block holds the list's next pointer in its first 8 bytes; nothing else is stored.
//! - Each list is capped ([`CACHE_BYTES`] per class), beyond which frees go to the inner
//!   allocator, so a thread holds at most ~512 KiB of cached blocks.
//! - A thread's blocks go back to the inner allocator when the thread exits, so threads that
//!   come and go (tokio's blocking pool) do not leak: the first block a thread caches sets a
//!   pthread key whose destructor releases the cache. Neither creating the key nor setting it
//!   allocates, so the allocator never recurses into itself.
//! - The lists are a `const`-initialised thread local without a destructor of its own:
//!   reading it never allocates either.
//! - The lists belong to the thread, not to an allocator value, so there must be one
//!   allocator using them: [`ThreadCache`] cannot be built outside this module, and the one
//!   instance is the program's global allocator ([`super`]). Tests build their own, one per
//!   test thread.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Width of a size class.
const STEP: usize = 16;
/// Number of classes: 16, 32, …, 512 bytes.
const CLASSES: usize = 32;
/// Largest size served from the cache.
const MAX_SIZE: usize = STEP * CLASSES;
/// Alignment of every class block (dlmalloc's own, on 64-bit targets).
const ALIGN: usize = 16;
/// Cap of one class's list, in bytes.
const CACHE_BYTES: usize = 16 * 1024;

struct Lists {
    head: [*mut u8; CLASSES],
    len: [u32; CLASSES],
    closed: bool,
    /// The thread-exit release is armed for this thread.
    registered: bool,
}

thread_local! {
    static LISTS: UnsafeCell<Lists> = const {
        UnsafeCell::new(Lists {
            head: [ptr::null_mut(); CLASSES],
            len: [0; CLASSES],
            closed: false,
            registered: false,
        })
    };
}

/// Arms [`release_thread_cache`] for when this thread exits: a pthread key (created once per
/// process) with a destructor, set to a non-null value on this thread. musl and glibc keep
/// thread-specific values in the thread itself: neither call allocates.
fn release_at_exit() {
    static KEY: std::sync::OnceLock<libc::pthread_key_t> = std::sync::OnceLock::new();
    unsafe extern "C" fn on_exit(_: *mut libc::c_void) {
        release_thread_cache();
    }
    let key = KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is ours to write; the destructor is an `extern "C"` function.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(on_exit)) };
        // Without a key the cache still works; a thread's blocks then stay with it.
        if rc != 0 {
            return libc::pthread_key_t::MAX;
        }
        key
    });
    if *key != libc::pthread_key_t::MAX {
        // SAFETY: a valid key; the value only has to be non-null for the destructor to run.
        unsafe { libc::pthread_setspecific(*key, ptr::NonNull::<u8>::dangling().as_ptr().cast()) };
    }
}

fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > MAX_SIZE || layout.align() > ALIGN {
        return None;
    }
    Some(layout.size().div_ceil(STEP) - 1)
}

fn class_layout(class: usize) -> Layout {
    // SAFETY: a non-zero multiple of 16 up to 512, and a power-of-two alignment.
    unsafe { Layout::from_size_align_unchecked((class + 1) * STEP, ALIGN) }
}

/// Blocks each class's list may hold: [`CACHE_BYTES`] of them (a table, not a division on
/// every free).
const CAPACITY: [u32; CLASSES] = {
    let mut c = [0; CLASSES];
    let mut i = 0;
    while i < CLASSES {
        c[i] = (CACHE_BYTES / ((i + 1) * STEP)) as u32;
        i += 1;
    }
    c
};

/// A cached block of `class`, if this thread has one.
fn pop(class: usize) -> Option<*mut u8> {
    LISTS
        .try_with(|l| {
            // SAFETY: only this thread touches its lists, and nothing here re-enters.
            let l = unsafe { &mut *l.get() };
            let p = l.head[class];
            if p.is_null() {
                return None;
            }
            // SAFETY: `p` is a free block of this class; its first 8 bytes hold the next one.
            l.head[class] = unsafe { (p as *mut *mut u8).read() };
            l.len[class] -= 1;
            Some(p)
        })
        .ok()
        .flatten()
}

/// Keeps `p` (a block of `class`) for reuse; false when the list is full or closed.
fn push(class: usize, p: *mut u8) -> bool {
    LISTS
        .try_with(|l| {
            // SAFETY: as in `pop`.
            let l = unsafe { &mut *l.get() };
            if l.closed || l.len[class] >= CAPACITY[class] {
                return false;
            }
            if !l.registered {
                l.registered = true;
                release_at_exit();
            }
            // SAFETY: `p` is a block of at least 16 bytes, aligned to 16, no longer in use.
            unsafe { (p as *mut *mut u8).write(l.head[class]) };
            l.head[class] = p;
            l.len[class] += 1;
            true
        })
        .unwrap_or(false)
}

/// Gives this thread's cached blocks back to the global allocator and stops caching on it;
/// runs when the thread exits.
fn release_thread_cache() {
    let _ = LISTS.try_with(|l| {
        // SAFETY: as in `pop`; `closed` is set first, so the frees below go past the cache.
        unsafe { (*l.get()).closed = true };
    });
    for class in 0..CLASSES {
        while let Some(p) = pop(class) {
            // SAFETY: `p` came from the global allocator with this class's layout.
            unsafe { std::alloc::dealloc(p, class_layout(class)) };
        }
    }
}

/// How many blocks this thread holds in its cache.
#[cfg(test)]
fn cached_blocks() -> usize {
    LISTS
        .try_with(|l| {
            // SAFETY: as in `pop`.
            unsafe { (*l.get()).len.iter().map(|&n| n as usize).sum() }
        })
        .unwrap_or(0)
}

/// The allocator `A` with a per-thread cache of small blocks in front of it. Built only here
/// (see the module documentation).
pub(super) struct ThreadCache<A>(A);

impl<A: GlobalAlloc> ThreadCache<A> {
    pub(super) const fn new(inner: A) -> Self {
        ThreadCache(inner)
    }
}

// SAFETY: every block handed out is either one the inner allocator made for a layout of the
// same class (at least as large, as aligned) or one it made for this exact layout; frees go
// back with the layout the block was made with (see `class_of`, which is stable for a layout).
unsafe impl<A: GlobalAlloc> GlobalAlloc for ThreadCache<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(c) => match pop(c) {
                Some(p) => p,
                None => unsafe { self.0.alloc(class_layout(c)) },
            },
            None => unsafe { self.0.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(c) => {
                if !push(c, p) {
                    unsafe { self.0.dealloc(p, class_layout(c)) }
                }
            }
            None => unsafe { self.0.dealloc(p, layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(_) => {
                let p = unsafe { self.alloc(layout) };
                if !p.is_null() {
                    unsafe { ptr::write_bytes(p, 0, layout.size()) };
                }
                p
            }
            None => unsafe { self.0.alloc_zeroed(layout) },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` fits a layout of this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            (Some(a), Some(b)) if a == b => p,
            (None, None) => unsafe { self.0.realloc(p, layout, new_size) },
            _ => {
                let q = unsafe { self.alloc(new_layout) };
                if !q.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                }
                q
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicIsize, Ordering};
    use std::sync::Mutex;

    /// The system allocator, counting what is outstanding, and refusing frees of blocks it
    /// does not know or with another layout than they were made with.
    struct Checked {
        live: AtomicIsize,
        blocks: Mutex<Option<HashMap<usize, Layout>>>,
    }

    unsafe impl GlobalAlloc for Checked {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            self.live.fetch_add(1, Ordering::SeqCst);
            let mut b = self.blocks.lock().unwrap();
            assert!(b
                .get_or_insert_with(HashMap::new)
                .insert(p as usize, layout)
                .is_none());
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
            let made = self
                .blocks
                .lock()
                .unwrap()
                .as_mut()
                .unwrap()
                .remove(&(p as usize));
            assert_eq!(made, Some(layout), "freed with another layout, or twice");
            self.live.fetch_sub(1, Ordering::SeqCst);
            unsafe { System.dealloc(p, layout) }
        }
    }

    /// A cache in front of a checking allocator, for one test (the tests run under Miri too,
    /// which checks that nothing leaks: so the instance is owned, not leaked).
    fn cache() -> ThreadCache<Checked> {
        ThreadCache::new(Checked {
            live: AtomicIsize::new(0),
            blocks: Mutex::new(None),
        })
    }

    /// A block pointer that may cross to another thread (keeps its provenance, unlike a
    /// `usize`).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    struct Block(*mut u8);
    // SAFETY: the tests hand a block to one thread at a time.
    unsafe impl Send for Block {}
    unsafe impl Sync for Block {}

    /// Drains this thread's cache into `a` (`release_thread_cache` goes through the global
    /// allocator, which in tests is not the cache) and checks that nothing is left outstanding.
    fn all_given_back(a: &ThreadCache<Checked>) {
        for class in 0..CLASSES {
            while let Some(p) = pop(class) {
                unsafe { a.0.dealloc(p, class_layout(class)) };
            }
        }
        assert_eq!(a.0.live.load(Ordering::SeqCst), 0, "every block given back");
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn classes() {
        assert_eq!(class_of(layout(1)), Some(0));
        assert_eq!(class_of(layout(16)), Some(0));
        assert_eq!(class_of(layout(17)), Some(1));
        assert_eq!(class_of(layout(512)), Some(31));
        assert_eq!(class_of(layout(513)), None);
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(0, 1).unwrap()), None);
    }

    #[test]
    fn blocks_are_reused_never_shared_and_all_given_back() {
        let a = &cache();
        // Fill blocks with their own pattern; free some, allocate again, check none overlap.
        let mut rng = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut held: Vec<(*mut u8, Layout, u8)> = Vec::new();
        // Miri interprets every step: a tenth of the rounds still exercises every class.
        let rounds = if cfg!(miri) { 2_000 } else { 20_000u32 };
        for round in 0..rounds {
            if held.len() > 300 || (!held.is_empty() && next() % 3 == 0) {
                let i = next() as usize % held.len();
                let (p, l, tag) = held.swap_remove(i);
                for k in 0..l.size() {
                    assert_eq!(unsafe { *p.add(k) }, tag, "block overwritten");
                }
                unsafe { a.dealloc(p, l) };
            } else {
                let l = layout(1 + next() as usize % 700);
                let p = unsafe { a.alloc(l) };
                assert!(!p.is_null() && p as usize % 8 == 0);
                let tag = round as u8;
                unsafe { ptr::write_bytes(p, tag, l.size()) };
                held.push((p, l, tag));
            }
        }
        assert!(cached_blocks() > 0, "freed small blocks are kept");
        for (p, l, _) in held {
            unsafe { a.dealloc(p, l) };
        }
        let cached = cached_blocks();
        assert!(cached <= CLASSES * (CACHE_BYTES / STEP));
        assert_eq!(a.0.live.load(Ordering::SeqCst), cached as isize);
        all_given_back(a);
    }

    #[test]
    fn zeroed_even_from_a_dirty_block() {
        let a = &cache();
        let l = layout(100);
        let p = unsafe { a.alloc(l) };
        unsafe { ptr::write_bytes(p, 0xAB, 100) };
        unsafe { a.dealloc(p, l) };
        let q = unsafe { a.alloc_zeroed(l) };
        assert_eq!(p, q, "the freed block comes back");
        assert!((0..100).all(|k| unsafe { *q.add(k) } == 0));
        unsafe { a.dealloc(q, l) };
        all_given_back(a);
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_sizes() {
        let a = &cache();
        let mut l = layout(10);
        let mut p = unsafe { a.alloc(l) };
        for k in 0..10 {
            unsafe { *p.add(k) = k as u8 };
        }
        for size in [12, 16, 17, 300, 512, 513, 4000, 600, 40, 11] {
            p = unsafe { a.realloc(p, l, size) };
            l = layout(size);
            for k in 0..10 {
                assert_eq!(unsafe { *p.add(k) }, k as u8, "lost at size {size}");
            }
        }
        unsafe { a.dealloc(p, l) };
        all_given_back(a);
    }

    #[test]
    fn a_full_list_frees_to_the_inner_allocator() {
        let a = &cache();
        let l = layout(64);
        let blocks: Vec<*mut u8> = (0..2000).map(|_| unsafe { a.alloc(l) }).collect();
        for p in blocks {
            unsafe { a.dealloc(p, l) };
        }
        assert_eq!(
            cached_blocks(),
            CACHE_BYTES / 64,
            "the list stops at its cap"
        );
        assert_eq!(a.0.live.load(Ordering::SeqCst), (CACHE_BYTES / 64) as isize);
        all_given_back(a);
    }

    #[test]
    fn a_block_freed_on_another_thread_is_kept_there() {
        let a = &cache();
        let l = layout(64);
        let p = Block(unsafe { a.alloc(l) });
        std::thread::scope(|s| {
            s.spawn(|| {
                unsafe { a.dealloc(p.0, l) };
                assert_eq!(cached_blocks(), 1);
                let q = Block(unsafe { a.alloc(l) });
                assert_eq!(q, p, "reused on the thread that freed it");
                unsafe { a.dealloc(q.0, l) };
                all_given_back(a);
            });
        });
    }
}
