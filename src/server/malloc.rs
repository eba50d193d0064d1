//! glibc malloc settings for the server's allocation pattern.
//!
//! A range query allocates and frees hundreds of megabytes in short bursts
//! (fetched points, one vector per step). With glibc's defaults the freed
//! top of the heap is handed back to the kernel after every query and
//! faulted in, zeroed, again by the next: profiles of dashboard queries
//! showed 12-15% of their time in the kernel zeroing pages. Keeping up to
//! [`TRIM_THRESHOLD`] of freed memory between queries removes that, and a
//! background trim returns it once queries stop, so an idle server's
//! resident memory is not held up by its last query.

use std::time::Duration;

/// Freed memory at the top of a heap kept for reuse before it is returned.
const TRIM_THRESHOLD: i32 = 64 << 20;
/// Allocations from this size up are mapped separately (a fixed value also
/// stops glibc from raising its threshold as large blocks come and go).
const MMAP_THRESHOLD: i32 = 16 << 20;
/// How often kept memory is returned to the kernel.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// Applies the thresholds; call once at startup.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is thread-safe.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns freed memory kept by [`tune`] to the kernel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
