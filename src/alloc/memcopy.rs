//! `memcpy` and `memmove` for the static musl build (x86_64), exported by [`super`] there.
//!
//! Why: musl's x86_64 `memcpy` is one `rep movsq` whatever the size, and every small copy (a
//! string, a struct, a short slice: most copies a program makes) pays that instruction's
//! start-up of tens of cycles. In the static binary that cost `consume` several times the CPU
//! glibc's `memmove` takes (docs/performance.md). These two do what glibc's do at the sizes that
//! matter: up to 64 bytes, two to four overlapping unaligned loads, then the stores (no loop,
//! no branch per byte); above, `rep movsb`, which CPUs with ERMS (Intel since 2012, AMD Zen 3)
//! run as their fastest copy, backwards only when a `memmove` overlaps that way.
//!
//! Written with fixed-size unaligned loads and stores and inline assembly only: a copy loop in
//! Rust could be turned back into a call to `memcpy` by the compiler, i.e. into itself.
//! `tests` compare both with a byte-by-byte reference at every size up to 300 bytes, every
//! alignment and every overlap; the glibc builds and the test suite do not export them.

use core::arch::asm;
use core::ptr::{read_unaligned as load, write_unaligned as store};

/// Copies `n` bytes from `src` to `dst`; the two may overlap (`memmove`'s contract, which
/// includes `memcpy`'s).
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `n` bytes.
#[inline(always)]
pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    if n <= 64 {
        return copy_small(dst, src, n);
    }
    let dst_after_src = (dst as usize).wrapping_sub(src as usize) < n;
    if dst_after_src {
        // `dst` starts inside the source: copy from the end down so that no byte is
        // overwritten before it is read.
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rsi") src.add(n - 1) => _,
            inout("rdi") dst.add(n - 1) => _,
            options(nostack, preserves_flags)
        );
    } else {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags)
        );
    }
}

/// Up to 64 bytes: every load before the first store, so overlap in either direction is fine.
#[inline(always)]
unsafe fn copy_small(dst: *mut u8, src: *const u8, n: usize) {
    if n >= 32 {
        let a = load(src as *const u128);
        let b = load(src.add(16) as *const u128);
        let c = load(src.add(n - 32) as *const u128);
        let d = load(src.add(n - 16) as *const u128);
        store(dst as *mut u128, a);
        store(dst.add(16) as *mut u128, b);
        store(dst.add(n - 32) as *mut u128, c);
        store(dst.add(n - 16) as *mut u128, d);
    } else if n >= 16 {
        first_and_last::<u128>(dst, src, n);
    } else if n >= 8 {
        first_and_last::<u64>(dst, src, n);
    } else if n >= 4 {
        first_and_last::<u32>(dst, src, n);
    } else if n >= 2 {
        first_and_last::<u16>(dst, src, n);
    } else if n == 1 {
        *dst = *src;
    }
}

/// `n` bytes, `size_of::<T>() <= n <= 2 * size_of::<T>()`, as the first and the last `T` of
/// the range (overlapping in the middle), both loaded before either is stored.
#[inline(always)]
unsafe fn first_and_last<T>(dst: *mut u8, src: *const u8, n: usize) {
    let w = core::mem::size_of::<T>();
    let a = load(src as *const T);
    let b = load(src.add(n - w) as *const T);
    store(dst as *mut T, a);
    store(dst.add(n - w) as *mut T, b);
}

#[cfg(test)]
mod tests {
    use super::copy;

    /// The byte-by-byte meaning of `memmove`: what `dst..dst+n` holds afterwards.
    fn reference(buf: &[u8], dst: usize, src: usize, n: usize) -> Vec<u8> {
        let mut out = buf.to_vec();
        let from: Vec<u8> = buf[src..src + n].to_vec();
        out[dst..dst + n].copy_from_slice(&from);
        out
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 + 7) as u8).collect()
    }

    #[test]
    fn separate_buffers_every_size_and_alignment() {
        for n in 0..=300 {
            for s_off in 0..16 {
                for d_off in 0..16 {
                    let src = pattern(n + 32);
                    let mut dst = vec![0xAA; n + 32];
                    unsafe { copy(dst.as_mut_ptr().add(d_off), src.as_ptr().add(s_off), n) };
                    let mut want = vec![0xAA; n + 32];
                    want[d_off..d_off + n].copy_from_slice(&src[s_off..s_off + n]);
                    assert_eq!(dst, want, "n={n} src+{s_off} dst+{d_off}");
                }
            }
        }
    }

    #[test]
    fn overlapping_every_size_and_distance() {
        for n in 0..=300 {
            for delta in -80i64..=80 {
                let mut buf = pattern(600);
                let src = 200usize;
                let dst = (200 + delta) as usize;
                let want = reference(&buf, dst, src, n);
                let p = buf.as_mut_ptr();
                unsafe { copy(p.add(dst), p.add(src), n) };
                assert_eq!(buf, want, "n={n} dst-src={delta}");
            }
        }
    }

    #[test]
    fn large_copies_both_directions() {
        for &n in &[4096usize, 65_536, 1 << 20] {
            let mut buf = pattern(n + 4096);
            let want = reference(&buf, 1000, 0, n);
            let p = buf.as_mut_ptr();
            unsafe { copy(p.add(1000), p, n) };
            assert_eq!(buf, want, "backwards, n={n}");
            let mut buf = pattern(n + 4096);
            let want = reference(&buf, 0, 1000, n);
            let p = buf.as_mut_ptr();
            unsafe { copy(p, p.add(1000), n) };
            assert_eq!(buf, want, "forwards, n={n}");
        }
    }
}
