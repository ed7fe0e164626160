//! The pretrained networks, in candle. Tensors in, tensors out: no notion
//! of seconds, files or speakers lives here.

pub mod campplus;
pub mod embedding;
pub mod fbank;
pub mod lstm;
pub mod mel;
pub mod powerset;
pub mod segmentation;
pub mod sincnet;
mod sincnet_cpu;
pub mod weights;
