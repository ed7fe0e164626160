//! The two pretrained networks, in candle. Tensors in, tensors out: no notion
//! of seconds, files or speakers lives here.

pub mod campplus;
pub mod embedding;
pub mod fbank;
pub mod lstm;
#[cfg(feature = "cuda")]
mod lstm_cuda;
pub mod mel;
pub(crate) mod packed;
pub mod segmentation;
pub mod sincnet;
mod sincnet_cpu;
pub mod weights;

/// Which kernel runs the CPU backend's matrix products: "AVX-512",
/// "AVX2+FMA", or "gemm" on CPUs without either.
pub fn cpu_kernel() -> &'static str {
    match packed::Kernel::detect() {
        Some(packed::Kernel::Avx512) => "AVX-512",
        Some(packed::Kernel::Avx2) => "AVX2+FMA",
        None => "gemm",
    }
}
