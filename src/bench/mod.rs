//! Throughput measurements of the networks on synthetic input, for
//! `diarist bench --networks` and comparisons with the PyTorch baselines.
//! Nothing here runs during diarization.

pub mod embedding;
pub mod segmentation;
