//! Throughput measurements of the networks on synthetic input, shared by
//! `diarist bench` and the examples. Nothing here is used by the pipeline.

pub mod segmentation;
