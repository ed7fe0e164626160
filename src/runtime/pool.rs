//! The one pool of compute threads: rayon's global pool. candle's CPU ops
//! and matrix products already run on it; the kernels (the LSTM's
//! directions) and the pipeline (the clustering's distances) share it, so
//! no code spawns threads of its own for data-parallel work.
//!
//! The runtime sizes it once per process, to the thread count candle plans
//! its products for (`RAYON_NUM_THREADS`, else the cores it may use), so
//! that a product split for N threads finds N threads.

/// Caps glibc's arenas (`memory::limit_malloc_arenas`), then sizes the
/// global pool: in that order, so that the pool's threads are born under
/// the cap. Only the first call, before anything else used the pool, sizes
/// it; later calls (another engine in the same process) change nothing.
pub fn init_compute_pool() {
    super::memory::limit_malloc_arenas();
    let threads = candle_core::utils::get_num_threads().max(1);
    // An error means the pool already exists: keep it.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("diarist-compute-{i}"))
        .build_global();
}
