//! Pass one over the audio: decode, run the segmentation network on sliding
//! windows (5 or 10 s, as the model was trained) and the speaker encoder on
//! a fixed grid of 1.6 s partials, in batches, as the samples arrive.
//!
//! Nothing here holds the whole recording: samples are dropped once every
//! window and mel frame that needs them is done, so a 4-hour file costs the
//! network outputs (a few KB per window), not 0.9 GB of samples.

use std::collections::VecDeque;
use std::time::Instant;

use candle_core::{Device, Module, Tensor};

use super::embeddings::{PartialGrid, partials_used};
use super::encoder::Encoder;
use super::feed::Arrival;
use super::frames::{LOCAL_SPEAKERS, MEL_HOP, PARTIAL_FRAMES, live_geometry, num_windows};
use crate::audio::AudioStream;
use crate::error::{Error, Result};
use crate::models::mel;
use crate::models::segmentation::{Geometry, Segmentation};
use crate::progress::{Progress, Stage};

use super::params::PipelineParams;

/// Samples of zeros librosa puts on each side (`center=True`, n_fft 400).
pub(crate) const MEL_PAD: usize = mel::CENTER_PAD_SAMPLES;
/// Samples one mel frame reads.
pub(crate) const MEL_WINDOW: usize = mel::WINDOW_SAMPLES;

/// Where 16 kHz mono samples come from: a file being decoded, or memory.
pub trait SampleSource: Send {
    /// Appends the next samples to `out`; 0 means the end.
    fn read_chunk(&mut self, out: &mut Vec<f32>) -> Result<usize>;
    /// Expected total, for progress; `None` when unknown.
    fn len_hint(&self) -> Option<usize>;
}

impl SampleSource for AudioStream {
    fn read_chunk(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        AudioStream::read_chunk(self, out)
    }

    fn len_hint(&self) -> Option<usize> {
        self.info()
            .duration_s
            .map(|d| (d * crate::audio::SAMPLE_RATE as f64).round() as usize)
    }
}

/// Samples already in memory, handed out in decoder-sized chunks.
pub struct SliceSource<'a> {
    samples: &'a [f32],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    pub fn new(samples: &'a [f32]) -> Self {
        Self { samples, pos: 0 }
    }
}

impl SampleSource for SliceSource<'_> {
    fn read_chunk(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        let n = (self.samples.len() - self.pos).min(64 * 1024);
        out.extend_from_slice(&self.samples[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.samples.len())
    }
}

/// The networks one job runs, all on one device.
pub struct Networks<'a> {
    pub segmentation: &'a Segmentation,
    pub encoder: &'a Encoder,
    pub device: &'a Device,
}

/// What pass one leaves for clustering and reconstruction.
#[derive(Debug, Default)]
pub struct Inferred {
    pub num_samples: usize,
    /// The segmentation's windows and frames.
    pub geometry: Geometry,
    /// Samples between window starts.
    pub step: usize,
    /// (windows, frames, 3) local speaker activities in [0, 1], row-major
    /// (`Segmentation::speaker_activities`: 0 or 1 for a powerset model).
    pub activity: Vec<f32>,
    /// Mel frames between partial starts.
    pub partial_grid: usize,
    /// (partials, embedding_dim) unit-length partial embeddings; partial
    /// `p` covers feature frames `[p·grid, p·grid + 160)`.
    pub partials: Vec<f32>,
    /// Values in one embedding (the encoder's).
    pub embedding_dim: usize,
    /// Partials that went through the speaker encoder (the rest were not
    /// needed and are zeros).
    pub partials_embedded: usize,
    /// Seconds spent decoding, and computing mel frames; on a GPU both run
    /// on a helper thread beside the networks (`feed`), off the critical path.
    pub decode_s: f64,
    pub features_s: f64,
    /// Seconds the engine thread spent on each network. On a GPU the
    /// networks run while the host goes on, and reading a segmentation
    /// batch back also waits for the encoder batches issued before it, so
    /// part of the encoder's time is counted here as segmentation.
    pub segmentation_s: f64,
    pub embedding_s: f64,
}

impl Inferred {
    /// Activities per window: frames × local speakers.
    fn window_len(&self) -> usize {
        self.geometry.frames_per_window * LOCAL_SPEAKERS
    }

    pub fn num_windows(&self) -> usize {
        self.activity.len() / self.window_len()
    }

    /// (frames, 3) activities of window `c`.
    pub fn window(&self, c: usize) -> &[f32] {
        let n = self.window_len();
        &self.activity[c * n..(c + 1) * n]
    }

    pub fn num_partials(&self) -> usize {
        self.partials
            .len()
            .checked_div(self.embedding_dim)
            .unwrap_or(0)
    }

    pub fn partial(&self, p: usize) -> &[f32] {
        let d = self.embedding_dim;
        &self.partials[p * d..(p + 1) * d]
    }
}

/// Batch sizes for the two networks.
#[derive(Debug, Clone, Copy)]
pub struct Batches {
    pub windows: usize,
    pub partials: usize,
}

/// Which GE2E partials pass one embeds.
#[derive(Debug, Clone, Copy)]
pub enum PartialSelection<'a> {
    /// Every partial on the grid (for parameter sweeps that re-pool them).
    All,
    /// Only those that `embeddings::local_speakers` with these parameters
    /// reads; the others are left as zeros. The result is the same.
    UsedBy(&'a PipelineParams),
}

/// Runs pass one over `source`. `step` and `grid` are in samples and mel
/// frames.
pub fn infer(
    nets: &Networks,
    source: &mut dyn SampleSource,
    step: usize,
    grid: usize,
    batches: Batches,
    selection: PartialSelection,
    progress: &mut dyn Progress,
) -> Result<Inferred> {
    let ahead = !nets.device.is_cpu();
    let hint = source.len_hint();
    super::feed::with_arrivals(source, nets.encoder, ahead, |arrivals| {
        consume(
            nets, arrivals, hint, step, grid, batches, selection, progress,
        )
    })
}

/// The engine thread's half of pass one: windows and partials cut from the
/// arriving samples and mel frames, run through the networks in batches.
#[allow(clippy::too_many_arguments)]
fn consume(
    nets: &Networks,
    arrivals: &mut dyn Iterator<Item = Result<Arrival>>,
    hint: Option<usize>,
    step: usize,
    grid: usize,
    batches: Batches,
    selection: PartialSelection,
    progress: &mut dyn Progress,
) -> Result<Inferred> {
    let geo = nets.segmentation.geometry();
    let mut out = Inferred {
        geometry: geo,
        step,
        partial_grid: grid,
        embedding_dim: nets.encoder.embedding_dim(),
        ..Inferred::default()
    };
    // `padded[i]` is sample `base + i - MEL_PAD`: the windows' samples,
    // indexed as in the mel frames' stream (behind librosa's leading zeros).
    let mut padded: Vec<f32> = vec![0.0; MEL_PAD];
    let mut base = 0usize;
    // The encoder's feature frames, row-major, `width` values each.
    let width = nets.encoder.frame_width();
    let dim = nets.encoder.embedding_dim();
    let mut mel_frames: VecDeque<f32> = VecDeque::new();
    let mut mel_base = 0usize; // absolute index of the first frame held
    let mut next_window = 0usize;
    let mut next_partial = 0usize;
    // Windows [batch_first, next_window) wait for the segmentation network;
    // `span` is the buffer their samples are copied into.
    let mut batch_first = 0usize;
    let mut span: Vec<f32> = Vec::new();
    // Partials some segmented window reads (with `PartialSelection::UsedBy`).
    let mut used: Vec<bool> = Vec::new();
    let mut used_scratch = Vec::new();
    let mut partial_batch: Vec<f32> = Vec::with_capacity(batches.partials * PARTIAL_FRAMES * width);
    // Which partial each row of `partial_batch` is.
    let mut partial_rows: Vec<usize> = Vec::with_capacity(batches.partials);
    let mut in_flight: Vec<EncoderBatch> = Vec::new();
    let mut eof = false;

    while !eof {
        let Some(arrival) = arrivals.next() else {
            // Only a helper thread that died mid-stream ends without an end
            // marker; its panic is raised when the scope joins it.
            return Err(Error::Backend {
                backend: "decoder".into(),
                reason: "the decoding thread stopped".into(),
            });
        };
        let arrival = arrival?;
        out.decode_s += arrival.decode_s;
        out.features_s += arrival.features_s;
        let n = arrival.samples.len();
        padded.extend_from_slice(&arrival.samples);
        out.num_samples += n;
        eof = arrival.is_end();
        let num_samples = out.num_samples;
        // Segmentation windows whose samples are all here (or all there will
        // be), in batches; at the end, whatever is left.
        let windows_total = if eof {
            num_windows(&geo, num_samples, step)
        } else {
            usize::MAX
        };
        loop {
            let full = next_window - batch_first == batches.windows;
            let last = eof && next_window == windows_total && next_window > batch_first;
            if full || last {
                let segmented = out.num_windows();
                let pending = Pending {
                    padded: &padded,
                    base,
                    first: batch_first,
                    count: next_window - batch_first,
                };
                run_segmentation(nets, pending, &mut span, &mut out)?;
                // Reading the scores waited for every batch issued before
                // them, the speaker encoder's too: theirs are ready.
                let started = Instant::now();
                read_embeddings(&mut in_flight, &mut out)?;
                out.embedding_s += started.elapsed().as_secs_f64();
                batch_first = next_window;
                if let PartialSelection::UsedBy(params) = selection {
                    // Until the end every partial a segmented window holds
                    // exists (the window's samples are all here); at the end
                    // the last, padded window may reach past the last partial.
                    let num_partials = if eof {
                        partial_count(num_samples / MEL_HOP + 1, grid, num_samples)
                    } else {
                        usize::MAX
                    };
                    let layout = PartialGrid {
                        step,
                        partial_grid: grid,
                        num_partials,
                    };
                    for c in segmented..out.num_windows() {
                        used_scratch.clear();
                        partials_used(c, out.window(c), layout, params, &mut used_scratch);
                        for &p in &used_scratch {
                            if used.len() <= p {
                                used.resize(p + 1, false);
                            }
                            used[p] = true;
                        }
                    }
                }
                let expected =
                    hint.map_or(next_window, |h| num_windows(&geo, h, step).max(next_window));
                if progress
                    .update(Stage::Segmentation, next_window, expected)
                    .is_break()
                {
                    return Err(Error::Cancelled);
                }
                continue;
            }
            if next_window >= windows_total
                || (!eof && next_window * step + geo.window_samples > num_samples)
            {
                break;
            }
            next_window += 1;
        }

        let started = Instant::now();
        mel_frames.extend(arrival.frames);
        let held = mel_frames.len() / width;
        let mel_total = mel_base + held;
        // Partials on the grid; at the end, one zero-padded partial when the
        // recording is shorter than a partial.
        let last_partial = if mel_total >= PARTIAL_FRAMES || eof {
            partial_count(mel_total, grid, num_samples)
        } else {
            0
        };
        let layout = PartialGrid {
            step,
            partial_grid: grid,
            num_partials: last_partial,
        };
        while next_partial < last_partial {
            let p = next_partial;
            let wanted = match selection {
                PartialSelection::All => true,
                PartialSelection::UsedBy(_) => {
                    // Known once every window that may hold it is segmented.
                    let all_segmented = eof && batch_first == windows_total;
                    if !all_segmented && layout.last_window_holding(p) >= out.num_windows() {
                        break;
                    }
                    used.get(p).copied().unwrap_or(false)
                }
            };
            next_partial += 1;
            out.partials.resize(next_partial * dim, 0.0);
            if !wanted {
                continue;
            }
            let first = p * grid - mel_base;
            let available = held.saturating_sub(first).min(PARTIAL_FRAMES);
            partial_batch.extend(mel_frames.range(first * width..(first + available) * width));
            partial_batch.resize(
                partial_batch.len() + (PARTIAL_FRAMES - available) * width,
                0.0,
            );
            partial_rows.push(p);
            if partial_rows.len() == batches.partials {
                in_flight.push(run_encoder(nets, &mut partial_batch, &mut partial_rows)?);
            }
        }
        out.embedding_s += started.elapsed().as_secs_f64();

        // Forget what no window, mel frame or partial will read again.
        let keep_mel = (next_partial * grid).min(mel_base + held);
        mel_frames.drain(..(keep_mel - mel_base) * width);
        mel_base = keep_mel;
        // (At the end the next window may start past the last sample.)
        let keep_sample = (batch_first * step + MEL_PAD).min(base + padded.len());
        if keep_sample > base {
            padded.drain(..keep_sample - base);
            base = keep_sample;
        }
    }
    let started = Instant::now();
    if !partial_rows.is_empty() {
        in_flight.push(run_encoder(nets, &mut partial_batch, &mut partial_rows)?);
    }
    read_embeddings(&mut in_flight, &mut out)?;
    out.embedding_s += started.elapsed().as_secs_f64();
    let total = out.num_windows();
    if progress
        .update(Stage::Segmentation, total, total)
        .is_break()
    {
        return Err(Error::Cancelled);
    }
    Ok(out)
}

/// Partials on the grid once `mel_total` mel frames exist; a recording
/// shorter than one partial (but not empty) gets one zero-padded partial.
fn partial_count(mel_total: usize, grid: usize, num_samples: usize) -> usize {
    if mel_total >= PARTIAL_FRAMES {
        (mel_total - PARTIAL_FRAMES) / grid + 1
    } else {
        usize::from(num_samples > 0)
    }
}

/// Windows waiting for the segmentation network: `count` windows from
/// window `first` on, whose samples sit in `padded` (sample `s` at
/// `padded[s + MEL_PAD - base]`).
struct Pending<'a> {
    padded: &'a [f32],
    base: usize,
    first: usize,
    count: usize,
}

/// Runs the segmentation network on the pending windows, as one span of
/// samples (windows overlap); past the end of the audio the span is zeros,
/// which pads the last window as pyannote does.
fn run_segmentation(
    nets: &Networks,
    pending: Pending,
    span: &mut Vec<f32>,
    out: &mut Inferred,
) -> Result<()> {
    let started = Instant::now();
    let step = out.step;
    let start = pending.first * step;
    let len = (pending.count - 1) * step + out.geometry.window_samples;
    let real = out.num_samples.saturating_sub(start).min(len);
    let from = start + MEL_PAD - pending.base;
    span.clear();
    span.extend_from_slice(&pending.padded[from..from + real]);
    span.resize(len, 0.0);
    let signal = Tensor::from_slice(span, len, nets.device)?;
    let scores = nets.segmentation.forward_windows(&signal, step)?; // (count, frames, classes)
    let activity = nets.segmentation.speaker_activities(&scores)?; // (count, frames, 3)
    out.activity.extend(host_values(&activity)?);
    out.segmentation_s += started.elapsed().as_secs_f64();
    Ok(())
}

/// A batch of partials given to the speaker encoder, read back later: on a
/// GPU the network runs while the host goes on cutting windows and partials,
/// and reading its output at once would make the host wait for it.
struct EncoderBatch {
    /// Which partial each row is.
    rows: Vec<usize>,
    /// (rows, 256) on the networks' device.
    embeddings: Tensor,
}

/// Issues the speaker encoder on the partials in `batch` (emptying it and
/// `rows`).
fn run_encoder(
    nets: &Networks,
    batch: &mut Vec<f32>,
    rows: &mut Vec<usize>,
) -> Result<EncoderBatch> {
    let embeddings = encode(nets, batch)?;
    batch.clear();
    Ok(EncoderBatch {
        rows: std::mem::take(rows),
        embeddings,
    })
}

/// Copies the embeddings of the batches in flight into `out.partials`.
fn read_embeddings(in_flight: &mut Vec<EncoderBatch>, out: &mut Inferred) -> Result<()> {
    for batch in in_flight.drain(..) {
        let embeddings = host_values(&batch.embeddings)?;
        for (&p, row) in batch
            .rows
            .iter()
            .zip(embeddings.chunks_exact(out.embedding_dim))
        {
            let d = out.embedding_dim;
            out.partials[p * d..(p + 1) * d].copy_from_slice(row);
        }
        out.partials_embedded += batch.rows.len();
    }
    Ok(())
}

/// Segmentation of whole live windows (`frames::WINDOW_SAMPLES`) laid end
/// to end in `windows`: (windows, frames, 3) activities, row-major. The
/// live path is laid out for segmentation 2022.07's windows; other models
/// are refused.
pub fn segment(nets: &Networks, windows: &[f32]) -> Result<Vec<f32>> {
    let geo = nets.segmentation.geometry();
    if geo != live_geometry() {
        return Err(Error::InvalidOption(format!(
            "live diarization runs segmentation 2022.07 only (this model has {} s windows)",
            geo.window_s()
        )));
    }
    let n = windows.len() / geo.window_samples;
    let wav = Tensor::from_slice(windows, (n, 1, geo.window_samples), nets.device)?;
    let scores = nets.segmentation.forward(&wav)?; // (n, frames, classes)
    host_values(&nets.segmentation.speaker_activities(&scores)?)
}

/// GE2E embeddings of 160-frame mel partials laid end to end in `mels`:
/// (partials, 256), L2-normalised, row-major.
pub fn embed_partials(nets: &Networks, mels: &[f32]) -> Result<Vec<f32>> {
    host_values(&encode(nets, mels)?)
}

/// The speaker encoder issued on the partials laid end to end in `mels`:
/// (partials, 256) on the networks' device.
fn encode(nets: &Networks, mels: &[f32]) -> Result<Tensor> {
    nets.encoder.encode(mels, PARTIAL_FRAMES, nets.device)
}

/// A network's output, read back to the host, row-major.
fn host_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?)
}
