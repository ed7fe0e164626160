//! The two pretrained networks, in candle. Tensors in, tensors out: no notion
//! of seconds, files or speakers lives here.

pub mod embedding;
pub mod lstm;
pub mod mel;
pub mod weights;
