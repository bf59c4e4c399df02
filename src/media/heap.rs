//! Gives freed heap memory back to the system once a client's branch is
//! gone. glibc keeps what a thread freed in that thread's arena for reuse,
//! so a burst (a client that sent as fast as it could into webrtcbin's
//! unbounded data-channel queues, see `media::channels`) would otherwise
//! stay resident for the life of the agent.

/// `malloc_trim(0)`: every arena, the top and the free pages inside.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' own locks; it is safe to call
    // from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
