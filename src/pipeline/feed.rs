//! The host-side half of pass one: decoding and mel frames. On a GPU these
//! run on a helper thread a few chunks ahead of the engine thread, so the
//! device never waits for the CPU's signal processing; on the CPU they run
//! inline, where a third thread would only take cores from the networks.
//! Neither half ever touches a model.
//!
//! The helper is a dedicated thread, not a task on the compute pool: it is
//! one sequential producer (each chunk continues the decoder's and the mel
//! tail's state), not data-parallel work, and it spends its time blocked on
//! the bounded channel that keeps it a few chunks ahead. A pool thread
//! parked there would be a thread the networks' parallel loops lose.

use std::sync::mpsc;
use std::time::Instant;

use super::encoder::Encoder;
use super::frames::MEL_HOP;
use super::infer::{MEL_PAD, SampleSource};
use crate::error::{Error, Result};

/// Chunks the helper thread may run ahead (each ~4 s of audio).
const CHUNKS_AHEAD: usize = 8;

/// One decoded chunk and the encoder's feature frames it completes.
#[derive(Debug, Default)]
pub(crate) struct Arrival {
    /// 16 kHz mono samples; empty at the end of the stream.
    pub samples: Vec<f32>,
    /// Feature frames (row-major, the encoder's frame width) that could be
    /// computed once these samples arrived (at the end, the rest, over the
    /// trailing zeros).
    pub frames: Vec<f32>,
    /// How many frames `frames` holds.
    pub num_frames: usize,
    pub decode_s: f64,
    pub features_s: f64,
}

impl Arrival {
    pub fn is_end(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Decodes `source` and computes its feature frames chunk by chunk.
struct Feed<'a> {
    source: &'a mut dyn SampleSource,
    encoder: &'a Encoder,
    /// The samples the next mel frames read, preceded (at the start) by
    /// librosa's `center=True` zeros.
    tail: Vec<f32>,
    done: bool,
}

impl<'a> Feed<'a> {
    fn new(source: &'a mut dyn SampleSource, encoder: &'a Encoder) -> Self {
        Self {
            source,
            encoder,
            tail: vec![0.0; MEL_PAD],
            done: false,
        }
    }
}

impl Iterator for Feed<'_> {
    type Item = Result<Arrival>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut arrival = Arrival::default();
        let started = Instant::now();
        // A decoder that panics on a damaged file fails that file: caught
        // here, on whichever thread decodes, it cannot pass for a failure
        // of the device the networks run on.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.source.read_chunk(&mut arrival.samples)
        }))
        .unwrap_or_else(|payload| {
            Err(Error::DecoderPanic(crate::error::panic_message(
                payload.as_ref(),
            )))
        });
        if let Err(e) = read {
            self.done = true;
            return Some(Err(e));
        }
        arrival.decode_s = started.elapsed().as_secs_f64();

        let started = Instant::now();
        self.tail.extend_from_slice(&arrival.samples);
        if arrival.is_end() {
            self.done = true;
            self.tail.resize(self.tail.len() + MEL_PAD, 0.0);
        }
        // A tail shorter than one frame gives none and keeps everything.
        arrival.num_frames = self
            .encoder
            .frames_from_padded(&self.tail, &mut arrival.frames);
        self.tail.drain(..arrival.num_frames * MEL_HOP);
        arrival.features_s = started.elapsed().as_secs_f64();
        Some(Ok(arrival))
    }
}

/// Runs `consume` over the arrivals of `source`: inline, or with decoding
/// and mel frames on a helper thread when `ahead` (the consumer's device is
/// not the CPU). Either way `consume` sees the same arrivals in order; if it
/// returns early, the helper stops at its next chunk.
pub(crate) fn with_arrivals<T>(
    source: &mut dyn SampleSource,
    encoder: &Encoder,
    ahead: bool,
    consume: impl FnOnce(&mut dyn Iterator<Item = Result<Arrival>>) -> Result<T>,
) -> Result<T> {
    let mut feed = Feed::new(source, encoder);
    if !ahead {
        return consume(&mut feed);
    }
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel(CHUNKS_AHEAD);
        std::thread::Builder::new()
            .name("diarist-decode".into())
            .spawn_scoped(scope, move || {
                for arrival in feed {
                    if sender.send(arrival).is_err() {
                        break; // the consumer stopped
                    }
                }
            })
            .map_err(|e| Error::Backend {
                backend: "host".into(),
                reason: format!("cannot start the decoding thread: {e}"),
            })?;
        let result = consume(&mut receiver.iter());
        // Dropping the receiver ends the helper at its next send.
        drop(receiver);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::embedding::EmbeddingModel;
    use crate::models::fbank::KaldiFbank;
    use crate::models::mel::MelFrontend;
    use crate::models::weights::default_models_dir;
    use crate::pipeline::SliceSource;

    fn signal(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32) * 0.013).sin() * 0.5 + ((i * 7919 % 101) as f32 - 50.0) * 1e-3)
            .collect()
    }

    fn encoder(model: EmbeddingModel) -> Encoder {
        Encoder::load(model, &default_models_dir(), &candle_core::Device::Cpu)
            .expect("shipped weights load")
    }

    fn ge2e_frames(samples: &[f32]) -> Vec<f32> {
        MelFrontend::new()
            .mel(samples)
            .into_iter()
            .flatten()
            .collect()
    }

    fn collect(encoder: &Encoder, samples: &[f32], ahead: bool) -> (Vec<f32>, Vec<f32>, usize) {
        let mut source = SliceSource::new(samples);
        with_arrivals(&mut source, encoder, ahead, |arrivals| {
            let (mut all, mut frames, mut ends) = (Vec::new(), Vec::new(), 0);
            for arrival in arrivals {
                let arrival = arrival?;
                ends += usize::from(arrival.is_end());
                all.extend_from_slice(&arrival.samples);
                assert_eq!(
                    arrival.frames.len(),
                    arrival.num_frames * encoder.frame_width()
                );
                frames.extend_from_slice(&arrival.frames);
            }
            Ok((all, frames, ends))
        })
        .expect("an in-memory source does not fail")
    }

    #[test]
    fn chunked_frames_equal_whole_signal_frames_inline_and_ahead() {
        // Several decoder-sized chunks, ending mid-hop.
        let samples = signal(3 * 64 * 1024 + 1234);
        let ge2e = encoder(EmbeddingModel::Ge2e);
        let whole = ge2e_frames(&samples);
        for ahead in [false, true] {
            let (all, frames, ends) = collect(&ge2e, &samples, ahead);
            assert_eq!(all, samples);
            assert_eq!(ends, 1, "exactly one end marker");
            assert_eq!(frames.len(), whole.len());
            assert!(frames == whole, "frames differ (ahead: {ahead})");
        }
        // CAM++'s filterbank over the same padded stream, in one call.
        let campplus = encoder(EmbeddingModel::CamPlus);
        let mut padded = vec![0.0; MEL_PAD];
        padded.extend_from_slice(&samples);
        padded.resize(padded.len() + MEL_PAD, 0.0);
        let whole = KaldiFbank::default().compute(&padded);
        let (_, frames, _) = collect(&campplus, &samples, true);
        assert!(frames == whole, "fbank frames differ");
    }

    #[test]
    fn empty_and_tiny_sources() {
        let ge2e = encoder(EmbeddingModel::Ge2e);
        let (all, frames, ends) = collect(&ge2e, &[], true);
        assert!(all.is_empty());
        assert_eq!(ends, 1);
        // librosa gives 1 + 0 / 160 frames of an empty signal, over zeros.
        assert_eq!(frames.len(), ge2e.frame_width());
        let tiny = signal(100);
        let (_, frames, _) = collect(&ge2e, &tiny, false);
        assert_eq!(frames, ge2e_frames(&tiny));
    }

    /// A source whose decoder panics after one chunk.
    struct PanickingSource(usize);

    impl SampleSource for PanickingSource {
        fn read_chunk(&mut self, out: &mut Vec<f32>) -> Result<usize> {
            self.0 += 1;
            assert!(self.0 < 2, "corrupt frame header");
            out.extend(signal(16_000));
            Ok(16_000)
        }

        fn len_hint(&self) -> Option<usize> {
            None
        }
    }

    #[test]
    fn a_decoder_panic_is_that_files_error_inline_and_ahead() {
        let ge2e = encoder(EmbeddingModel::Ge2e);
        for ahead in [false, true] {
            let mut source = PanickingSource(0);
            let error = with_arrivals(&mut source, &ge2e, ahead, |arrivals| {
                for arrival in arrivals {
                    arrival?;
                }
                Ok(())
            })
            .expect_err("the second chunk panics");
            assert!(
                matches!(&error, Error::DecoderPanic(m) if m.contains("corrupt frame header")),
                "{error:?} (ahead: {ahead})"
            );
        }
    }

    #[test]
    fn a_consumer_that_stops_early_stops_the_helper() {
        let samples = signal(40 * 64 * 1024);
        let ge2e = encoder(EmbeddingModel::Ge2e);
        let mut source = SliceSource::new(&samples);
        let first = with_arrivals(&mut source, &ge2e, true, |arrivals| {
            let arrival = arrivals.next().expect("one chunk")?;
            Ok(arrival.samples.len())
        })
        .expect("in-memory source");
        assert_eq!(first, 64 * 1024);
    }
}
