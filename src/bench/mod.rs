//! Throughput measurements of the engine's stages on synthetic input, for
//! `diarist`'s benchmark reports and comparisons with the PyTorch baselines
//! in the project's reference notes. Nothing here runs during diarization.

pub mod embedding;
