//! A long pointer stream through XTest keeps the heap flat. Alone in its
//! binary: it counts the whole process's live heap with its own global
//! allocator, which another test running beside it would disturb.
//! x11rb once kept a record of every request injected (they have no reply,
//! and nothing read from the connection): 16 bytes an event, 7 MiB an hour
//! at the soak's 60 Hz.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use oriel_input::backend::Backend;
use oriel_input::xtest::XTest;

mod common;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for GlobalAlloc::alloc, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above, for dealloc.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn a_long_pointer_stream_leaves_the_heap_flat() {
    let x = common::xvfb();
    let mut backend = XTest::connect(&x.1).expect("XTest");
    let mut step = |i: u32| {
        let v = (i % 60000) as u16;
        backend.pointer_abs(v, 65535 - v).expect("injected");
    };
    for i in 0..2_000 {
        step(i);
    }
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..100_000 {
        step(i);
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    // 100,000 records of 16 bytes were 1.6 MB (a VecDeque's doubling could
    // make it 2 MiB); what is left is at most one sync interval's worth.
    assert!(
        grown < 64 * 1024,
        "the heap grew {grown} bytes over 100,000 pointer moves"
    );
}
