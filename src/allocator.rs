//! The allocator of the `midpoint` binary (and of `examples/report`, which includes this file):
//! mimalloc, told to keep freed memory. Not part of the library.

// The estimator allocates and frees matrices of a few MB per critic and cross-validation
// step; glibc's malloc hands those to mmap and back, and the page faults cost ~15% of a
// `midpoint estimate` at n = 1,000 (CPU-clock profile, docs/performance.md). mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // mimalloc's own C entry points (linked through the `mimalloc` crate); `mi_option_t` is a C
    // enum, passed as an int.
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Tells mimalloc never to return freed memory to the kernel ("purge").
///
/// Why: by default it hands freed runs of pages back at once and then takes fresh ones, which
/// the kernel must zero (and, for huge pages, first assemble): in `midpoint estimate` at
/// n = 1,000 that was up to 60% of the CPU-clock samples (`clear_page_erms`) and made single
/// runs take 0.09–0.33 s, where with `MIMALLOC_PURGE_DELAY=-1` six alternating runs took
/// 0.09–0.11 s (docs/two-sample.md). A command that lives for seconds loses nothing by
/// keeping its memory until it exits: the peak is the same.
///
/// `15` is `mi_option_purge_delay` in the mimalloc v3 that `libmimalloc-sys` 0.1.49 builds
/// (Cargo.lock). The option is changed only while it holds its default, 1000 ms: under
/// another enum layout, or with `MIMALLOC_PURGE_DELAY` set by the user, nothing is touched.
pub fn keep_freed_memory() {
    const PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: plain getters and setters of mimalloc's option table, called before any thread
    // of ours starts; an out-of-range option index is ignored by mimalloc.
    unsafe {
        if mi_option_get(PURGE_DELAY) == 1000 {
            mi_option_set(PURGE_DELAY, -1);
        }
    }
}
