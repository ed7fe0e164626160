//! Hand-written compute: the packed CPU micro-kernels (AVX2 + FMA,
//! AVX-512) and the fused LSTM cell they feed, the fused CPU LSTM
//! recurrence, and the CUDA LSTM op (kernels in `cuda/*.cu`, compiled to
//! PTX by build.rs). The layers in `models` call these as small functions
//! or candle custom ops; nothing here knows about networks or weights files.

pub(crate) mod lstm_cpu;
#[cfg(feature = "cuda")]
pub(crate) mod lstm_cuda;
pub(crate) mod packed;

/// Which kernel runs the CPU backend's matrix products: "AVX-512",
/// "AVX2+FMA", or "gemm" on CPUs without either.
pub fn cpu_kernel() -> &'static str {
    match packed::Kernel::detect() {
        Some(packed::Kernel::Avx512) => "AVX-512",
        Some(packed::Kernel::Avx2) => "AVX2+FMA",
        None => "gemm",
    }
}
