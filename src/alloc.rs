//! The process's allocator: mimalloc (built without transparent huge pages) rather than
//! glibc's malloc, called through its plain entry points where a block's alignment allows,
//! and its purge delay tuned for a boot storm.
//!
//! Why mimalloc: a boot storm is thousands of short connections served on a thread per core,
//! and glibc kept what their threads freed in per-thread arenas — `scripts/bench-scale`
//! measured a storm at 100,000 phones at 98 MiB RSS on glibc and 71 MiB on this, the same day.
//!
//! Kept our own rather than the `mimalloc` crate's `MiMalloc`: that one calls the `_aligned`
//! entry points for every block, which check and round the alignment on each call; nearly all
//! of Rust's blocks ask for no more than a word's alignment, which every mimalloc block has.
//! callgrind: about 870 fewer instructions a fetch (a connection per request, 500 phones).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Every block mimalloc hands out is aligned to at least a word (`MI_INTPTR_SIZE`), the size
/// of its smallest bin; a layout asking for more goes to the `_aligned` entry points.
const PLAIN_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator (`#[global_allocator]` in `main.rs`).
pub struct Alloc;

// SAFETY: each call hands the layout's size to mimalloc, and its alignment too whenever it
// exceeds what mimalloc's plain entry points guarantee ([`PLAIN_ALIGN`]); blocks are freed
// with `mi_free`, which takes blocks from either kind of entry point.
unsafe impl GlobalAlloc for Alloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C calls; a null return is passed on as the trait asks.
        unsafe {
            if layout.align() <= PLAIN_ALIGN {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if layout.align() <= PLAIN_ALIGN {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the trait's contract).
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the trait's contract).
        unsafe {
            if layout.align() <= PLAIN_ALIGN {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (`mimalloc.h`; libmimalloc-sys names
/// only some options). The test below checks it is the option whose default is 1000 ms
/// (`options.c`; the header's comment says 10).
const MI_OPTION_PURGE_DELAY: mi::mi_option_t = 15;

/// How long memory freed stays with the process before mimalloc gives it back (ms). Its default
/// of a second held a storm's freed connections (133 MiB at 100,000 phones); giving it back at
/// once (0) made every new connection fault fresh pages in and rebuild free lists — 12-15 % of
/// the cycles of a connection per request (perf) — for 5 MiB less at a storm's peak
/// (`scripts/bench-scale`: 49 MiB at 0, 54 at 50).
const PURGE_DELAY_MS: std::ffi::c_long = 50;

/// Sets [`PURGE_DELAY_MS`]; an operator's `MIMALLOC_PURGE_DELAY` (mimalloc reads its options
/// from the environment) wins.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one of mimalloc's options to a value it documents; no pointers, and no
    // other thread exists yet.
    unsafe { mi::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_we_set() {
        // Not set in this test process: mimalloc's default, unless the environment sets it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads an option's value.
            let v = unsafe { mi::mi_option_get(MI_OPTION_PURGE_DELAY) };
            assert_eq!(v, 1000, "option {MI_OPTION_PURGE_DELAY} is not purge_delay");
        }
        let given = std::env::var("MIMALLOC_PURGE_DELAY").ok();
        tune();
        // SAFETY: as above.
        let v = unsafe { mi::mi_option_get(MI_OPTION_PURGE_DELAY) };
        match given.and_then(|g| g.parse::<std::ffi::c_long>().ok()) {
            Some(g) => assert_eq!(v, g, "the environment's delay is kept"),
            None => assert_eq!(v, PURGE_DELAY_MS, "our delay once tuned"),
        }
    }

    #[test]
    fn blocks_are_aligned_as_asked() {
        let a = Alloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 3, 8, 24, 100, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                // SAFETY: a non-zero size; each block is freed with its layout below.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null(), "{size} bytes at {align}");
                    assert_eq!(p as usize % align, 0, "{size} bytes at {align}");
                    p.write_bytes(0xA5, size);
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} bytes at {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "{size} grown at {align}");
                    assert!(
                        std::slice::from_raw_parts(grown, size)
                            .iter()
                            .all(|&b| b == 0xA5)
                    );
                    let grown_layout =
                        Layout::from_size_align(size * 3, align).expect("a valid layout");
                    a.dealloc(grown, grown_layout);
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
