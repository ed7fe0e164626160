//! Batch sizing from free memory, and the backend-specific memory queries.
//! Only the engine thread calls these: they touch the GPU.

use candle_core::Device;

use super::stats::{GpuMemory, SystemProbe};

/// Bytes one 5 s segmentation window needs while in flight on the CPU
/// (activations of SincNet and the four BiLSTM layers plus the output, and
/// the GE2E partials that come with it).
pub const CPU_BYTES_PER_WINDOW: u64 = 12 * 1024 * 1024;

/// The same on a GPU, where the front end runs in float64 through an im2col
/// copy of every window (251 taps × 7975 frames × 8 bytes = 16 MB alone).
/// Measured on CUDA: 8.4 GiB in use after a 60-minute job at 256 windows per
/// call, about 32 MiB a window over the context. Metal, which keeps float32,
/// plans with the same figure and so errs on the safe side.
pub const GPU_BYTES_PER_WINDOW: u64 = 40 * 1024 * 1024;

/// Default upper bound on windows per network call: past this, a larger
/// batch no longer speeds up the LSTM steps on any backend we target.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// Upper bound on windows per call on the CPU: 32 sequences fill the
/// micro-kernels' row blocks in every recurrent step; 64 measured no faster,
/// while memory keeps growing with the batch.
pub const CPU_MAX_BATCH: usize = 32;

/// Windows per call when free memory cannot be read.
const UNKNOWN_MEMORY_BATCH: usize = 16;

/// Only this share of free memory is planned for, leaving room for the
/// embedding stage, the decoded audio and other programs.
const USABLE_FRACTION: f64 = 0.5;

/// Windows per call that fit in `free_bytes`, clamped to `[1, cap]`.
pub fn batch_size(free_bytes: Option<u64>, bytes_per_window: u64, cap: usize) -> usize {
    let cap = cap.max(1);
    let Some(free) = free_bytes else {
        return UNKNOWN_MEMORY_BATCH.clamp(1, cap);
    };
    let usable = (free as f64 * USABLE_FRACTION) as u64;
    let fits = usable / bytes_per_window.max(1);
    usize::try_from(fits).unwrap_or(usize::MAX).clamp(1, cap)
}

/// Keeps glibc's malloc to a single arena for the whole process. By default
/// every thread that allocates may get an arena of its own, and the compute
/// threads (the pool's, and SincNet's CPU workers, fresh for every batch)
/// leave their freed multi-megabyte buffers in theirs, where they stay
/// resident. Measured on a 3-minute job with fresh threads for every
/// batch: peak RSS 185 → 127 MB, RSS after the job 141 → 51 MB. Measured
/// again once the LSTM ran on the persistent pool, 60-minute bench on 2
/// cores: peak RSS 209.5 → 173-179 MiB, RSS after the job 116 → 63-109 MiB;
/// CPU time unchanged both times (the workers allocate a few large buffers,
/// so they hardly contend for the lock). Threads that allocated before the
/// call keep their arenas: `pool::init_compute_pool` calls it before it
/// starts the pool. A no-op on other C libraries; calling it again changes
/// nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        /// glibc `malloc.h`.
        const M_ARENA_MAX: c_int = -8;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        // SAFETY: mallopt only sets an allocator parameter, which glibc
        // allows at any time; arenas made before keep serving their threads.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }
}

/// Free memory for tensors on `device`: the GPU's own figure, or the
/// system's available RAM for the CPU.
pub(crate) fn free_bytes(device: &Device, probe: Option<&mut SystemProbe>) -> Option<u64> {
    if device.is_cpu() {
        return probe.map(|p| p.available_memory());
    }
    gpu_memory(device).map(|m| m.total_bytes.saturating_sub(m.used_bytes))
}

/// Used and total memory of the GPU behind `device`; `None` for the CPU or
/// when the query fails.
pub(crate) fn gpu_memory(device: &Device) -> Option<GpuMemory> {
    match device {
        Device::Cpu => None,
        #[cfg(feature = "cuda")]
        Device::Cuda(cuda) => {
            // Binds the context to this (the engine) thread, then asks the
            // driver; the figure covers every process on the card.
            let (free, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
            Some(GpuMemory {
                used_bytes: total.saturating_sub(free) as u64,
                total_bytes: total as u64,
            })
        }
        #[cfg(target_os = "macos")]
        Device::Metal(metal) => {
            // Metal has no "free" figure; the recommended working set is the
            // budget, and what this device has allocated counts against it.
            let mtl = metal.device();
            Some(GpuMemory {
                used_bytes: mtl.current_allocated_size() as u64,
                total_bytes: mtl.recommended_max_working_set_size() as u64,
            })
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn batch_follows_free_memory_within_cap() {
        // Half of 1200 MB at 12 MB a window is 50 windows.
        assert_eq!(batch_size(Some(1200 * MB), 12 * MB, 256), 50);
        assert_eq!(batch_size(Some(100_000 * MB), 12 * MB, 256), 256);
        assert_eq!(batch_size(Some(MB), 12 * MB, 256), 1);
        assert_eq!(batch_size(Some(0), 12 * MB, 256), 1);
        assert_eq!(batch_size(None, 12 * MB, 256), UNKNOWN_MEMORY_BATCH);
        assert_eq!(batch_size(None, 12 * MB, 4), 4);
        assert_eq!(batch_size(Some(1200 * MB), 12 * MB, 0), 1);
    }

    #[test]
    fn cpu_free_memory_comes_from_the_system() {
        let mut probe = SystemProbe::new().unwrap();
        let free = free_bytes(&Device::Cpu, Some(&mut probe)).unwrap();
        assert!(free > 0);
        assert!(gpu_memory(&Device::Cpu).is_none());
    }
}
