//! The two pretrained networks, in candle. Tensors in, tensors out: no notion
//! of seconds, files or speakers lives here.

pub mod embedding;
pub mod lstm;
#[cfg(feature = "cuda")]
mod lstm_cuda;
pub mod mel;
pub(crate) mod packed;
pub mod segmentation;
pub mod sincnet;
mod sincnet_cpu;
pub mod weights;
