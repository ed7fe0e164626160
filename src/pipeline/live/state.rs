//! The state of one live session: the audio, mel frames and partials the
//! next windows need, the running speakers and the open turns.
//!
//! Memory is bounded whatever the length: about 5 s of samples, the mel
//! frames and partials of one window, one centroid per speaker and one open
//! turn per speaker. Finished turns are handed out and not kept here.
//!
//! Everything here is plain CPU data; only [`LiveState::advance`] calls the
//! networks, and it moves its cursors only after a network call succeeded,
//! so after a GPU failure the same call can be re-run on the CPU.

use std::collections::VecDeque;

use super::clusters::{LiveClusters, Observation};
use super::params::LiveParams;
use super::turns::{LiveTurn, OpenTurns, label, merge_touching, speaker_index};
use crate::audio::SAMPLE_RATE;
use crate::diarization::{Diarization, StageTimings, Turn};
use crate::error::{Error, Result};
use crate::pipeline::binarize::hysteresis;
use crate::pipeline::embeddings::window_speakers;
use crate::pipeline::frames::{
    FRAME_SPAN, FRAME_STEP, LOCAL_SPEAKERS, MEL_HOP, PARTIAL_FRAMES, WINDOW_FRAMES, WINDOW_SAMPLES,
};
use crate::pipeline::infer::{MEL_PAD, MEL_WINDOW, Networks, embed_partials, segment};
use crate::pipeline::params::PipelineParams;

/// Windows segmented in one network call when the session is behind.
const MAX_WINDOW_BATCH: usize = 8;

/// The state of one live session.
pub struct LiveState {
    params: LiveParams,
    pipe: PipelineParams,
    step: usize,
    // Stream position. A "segment" restarts after a long gap in the input;
    // indices below are relative to its first sample, `origin`.
    origin: u64,
    received: usize,
    /// `padded[i]` is sample `pad_base + i - MEL_PAD` of the segment.
    padded: Vec<f32>,
    pad_base: usize,
    /// Mel frames from `mel_base`.
    /// Feature frames, row-major, the encoder's frame width each.
    mel: VecDeque<f32>,
    mel_base: usize,
    /// Partial embeddings from `partial_base`.
    partials: VecDeque<Vec<f32>>,
    partial_base: usize,
    /// End (exclusive, in samples) of the next window to segment.
    next_end: usize,
    /// Frames whose middle is before this sample have been labelled.
    labelled_until: usize,
    /// Labelled pieces (segment samples, speaker) that reach into the
    /// current window: the continuity evidence. At most a few per speaker.
    recent: VecDeque<(usize, usize, usize)>,
    clusters: LiveClusters,
    turns: OpenTurns,
    /// Seconds of audio received, gaps included.
    duration_s: f64,
    /// Scratch for network inputs.
    batch: Vec<f32>,
}

impl LiveState {
    pub fn new(params: LiveParams, pipe: PipelineParams) -> Result<Self> {
        if !(0.1..=5.0).contains(&params.step_s) {
            return Err(Error::InvalidOption(format!(
                "live step must be between 0.1 and 5 seconds, got {}",
                params.step_s
            )));
        }
        let step = (params.step_s * f64::from(SAMPLE_RATE)).round() as usize;
        let clusters = LiveClusters::new(params.join_similarity, params.max_speakers);
        let bridge_s = params.bridge_s;
        Ok(Self {
            params,
            pipe,
            step,
            origin: 0,
            received: 0,
            padded: vec![0.0; MEL_PAD],
            pad_base: 0,
            mel: VecDeque::new(),
            mel_base: 0,
            partials: VecDeque::new(),
            partial_base: 0,
            next_end: step,
            labelled_until: 0,
            recent: VecDeque::new(),
            clusters,
            turns: OpenTurns::new(bridge_s),
            duration_s: 0.0,
            batch: Vec::new(),
        })
    }

    pub fn params(&self) -> &LiveParams {
        &self.params
    }

    /// Seconds of audio received so far.
    pub fn duration_s(&self) -> f64 {
        self.duration_s
    }

    /// Adds 16 kHz mono samples that start at sample `start` of the
    /// recording. A short gap before them is filled with silence, a long
    /// one restarts the windows; samples from the past are ignored.
    pub fn push(&mut self, start: u64, samples: &[f32]) {
        let expected = self.origin + self.received as u64;
        let (start, samples) = if start < expected {
            let skip = usize::try_from(expected - start).unwrap_or(usize::MAX);
            (expected, samples.get(skip..).unwrap_or(&[]))
        } else {
            (start, samples)
        };
        let gap = start - expected;
        if gap > 0 {
            let max_fill = (self.params.max_fill_s * f64::from(SAMPLE_RATE)) as u64;
            if gap <= max_fill {
                self.append(&vec![0.0; gap as usize]);
            } else {
                self.restart_at(start);
            }
        }
        self.append(samples);
        self.duration_s = (self.origin + self.received as u64) as f64 / f64::from(SAMPLE_RATE);
    }

    fn append(&mut self, samples: &[f32]) {
        self.padded.extend_from_slice(samples);
        self.received += samples.len();
    }

    /// Starts a new segment at absolute sample `start`; speakers persist.
    fn restart_at(&mut self, start: u64) {
        self.origin = start;
        self.received = 0;
        self.padded.clear();
        self.padded.resize(MEL_PAD, 0.0);
        self.pad_base = 0;
        self.mel.clear();
        self.mel_base = 0;
        self.partials.clear();
        self.partial_base = 0;
        self.next_end = self.step;
        self.labelled_until = 0;
        self.recent.clear();
    }

    /// Runs the networks on every window and partial whose audio is here,
    /// and returns the turns that appeared or grew.
    pub fn advance(&mut self, nets: &Networks) -> Result<Vec<LiveTurn>> {
        let mut updates = Vec::new();
        self.compute_mel(nets);
        self.compute_partials(nets)?;
        while self.next_end <= self.received {
            let count = ((self.received - self.next_end) / self.step + 1).min(MAX_WINDOW_BATCH);
            self.batch.clear();
            for i in 0..count {
                let end = self.next_end + i * self.step;
                let start = end.saturating_sub(WINDOW_SAMPLES);
                let from = start + MEL_PAD - self.pad_base;
                self.batch
                    .extend_from_slice(&self.padded[from..from + (end - start)]);
                self.batch
                    .resize(self.batch.len() + WINDOW_SAMPLES - (end - start), 0.0);
            }
            let scores = segment(nets, &self.batch)?;
            for i in 0..count {
                let end = self.next_end;
                let n = WINDOW_FRAMES * LOCAL_SPEAKERS;
                let (base, partials) = (self.partial_base, std::mem::take(&mut self.partials));
                let lookup = |p: usize| {
                    p.checked_sub(base)
                        .and_then(|i| partials.get(i))
                        .map(Vec::as_slice)
                };
                self.label_window(end, &scores[i * n..(i + 1) * n], &lookup, &mut updates);
                self.partials = partials;
                self.next_end += self.step;
            }
        }
        self.forget();
        Ok(updates)
    }

    /// Mel frames over everything that has arrived (CPU only).
    fn compute_mel(&mut self, nets: &Networks) {
        let computed = self.mel_base + self.frames_held();
        let from = computed * MEL_HOP - self.pad_base;
        if self.padded.len() >= from + MEL_WINDOW {
            let mut frames = Vec::new();
            nets.encoder
                .frames_from_padded(&self.padded[from..], &mut frames);
            self.mel.extend(frames);
        }
    }

    /// Feature frames held in `mel`.
    fn frames_held(&self) -> usize {
        self.mel.len() / self.pipe.models.embedding.frame_width()
    }

    fn compute_partials(&mut self, nets: &Networks) -> Result<()> {
        let grid = self.pipe.partial_grid;
        let width = nets.encoder.frame_width();
        let dim = nets.encoder.embedding_dim();
        let mel_total = self.mel_base + self.frames_held();
        let due = if mel_total >= PARTIAL_FRAMES {
            (mel_total - PARTIAL_FRAMES) / grid + 1
        } else {
            0
        };
        let next = self.partial_base + self.partials.len();
        if due <= next {
            return Ok(());
        }
        self.batch.clear();
        for p in next..due {
            let first = (p * grid - self.mel_base) * width;
            self.batch
                .extend(self.mel.range(first..first + PARTIAL_FRAMES * width));
        }
        let embeddings = embed_partials(nets, &self.batch)?;
        self.partials
            .extend(embeddings.chunks_exact(dim).map(<[f32]>::to_vec));
        Ok(())
    }

    /// Clusters one window's local speakers and turns its newest frames
    /// into turn updates.
    fn label_window<'a>(
        &mut self,
        end: usize,
        scores: &[f32],
        partial: &dyn Fn(usize) -> Option<&'a [f32]>,
        updates: &mut Vec<LiveTurn>,
    ) {
        let start = end.saturating_sub(WINDOW_SAMPLES);
        let active = hysteresis(scores, self.pipe.onset, self.pipe.offset);
        let partial_step = self.pipe.partial_grid * MEL_HOP;
        let locals = window_speakers(0, start, &active, partial_step, partial, &self.pipe);
        let observed: Vec<(usize, Observation)> = locals
            .iter()
            .filter_map(|l| {
                l.embedding.as_deref().map(|e| {
                    (
                        l.local,
                        Observation {
                            embedding: e,
                            clean: l.clean,
                        },
                    )
                })
            })
            .collect();
        let observations: Vec<Observation> = observed.iter().map(|(_, o)| *o).collect();
        let middle = |i: usize| start + i * FRAME_STEP + FRAME_SPAN / 2;
        // For each local speaker, the share of its already-labelled frames
        // that each speaker was given.
        self.recent.retain(|&(_, to, _)| to > start);
        let speakers = self.clusters.speakers().len();
        let mut continuity = vec![vec![0f32; speakers]; LOCAL_SPEAKERS];
        for (k, shares) in continuity.iter_mut().enumerate() {
            let mut seen = 0usize;
            for i in (0..WINDOW_FRAMES).filter(|&i| active[i][k] && middle(i) < self.labelled_until)
            {
                seen += 1;
                let m = middle(i);
                for &(from, to, g) in &self.recent {
                    if from <= m && m < to && g < speakers {
                        shares[g] += 1.0;
                    }
                }
            }
            if seen > 0 {
                shares
                    .iter_mut()
                    .for_each(|x| *x = (*x / seen as f32).min(1.0));
            }
        }
        let weight = self.params.continuity;
        let bonus =
            |r: usize, g: usize| weight * continuity[observed[r].0].get(g).copied().unwrap_or(0.0);
        let assigned = self.clusters.assign_with(&observations, &bonus);
        let mut global = [None; LOCAL_SPEAKERS];
        for ((local, _), g) in observed.iter().zip(assigned) {
            global[*local] = g;
        }
        // A local speaker with no embedding yet (speech too new for a
        // partial) keeps the label it mostly had.
        for (k, slot) in global.iter_mut().enumerate() {
            if slot.is_none() && !observed.iter().any(|(l, _)| *l == k) {
                let shares = &continuity[k];
                *slot = (0..speakers)
                    .filter(|&g| shares[g] >= 0.5)
                    .max_by(|&a, &b| shares[a].total_cmp(&shares[b]));
            }
        }

        // Frames whose middle lies in [labelled_until, end) are new.
        let first = (0..WINDOW_FRAMES)
            .find(|&i| middle(i) >= self.labelled_until)
            .unwrap_or(WINDOW_FRAMES);
        let last = (first..WINDOW_FRAMES)
            .find(|&i| middle(i) >= end)
            .unwrap_or(WINDOW_FRAMES);
        let half = FRAME_STEP / 2;
        let to_s = |sample: usize| (self.origin + sample as u64) as f64 / f64::from(SAMPLE_RATE);
        for (k, g) in global.iter().enumerate() {
            let Some(g) = *g else { continue };
            let mut i = first;
            while i < last {
                if !active[i][k] {
                    i += 1;
                    continue;
                }
                let run = i;
                while i < last && active[i][k] {
                    i += 1;
                }
                let (a, b) = (middle(run).saturating_sub(half), middle(i - 1) + half);
                self.recent.push_back((a, b, g));
                self.turns.add(g, to_s(a), to_s(b), updates);
            }
        }
        self.labelled_until = end;
    }

    /// Labels the window ending at sample `end` from precomputed network
    /// outputs: its (293, 3) `scores` and every partial of the recording
    /// (`partials`, 256 floats each, on this state's grid), of which only
    /// those the live path would have had by then are used. For parameter
    /// sweeps that must not re-run the networks (examples/live_tune.rs).
    #[doc(hidden)]
    pub fn replay_window(&mut self, end: usize, scores: &[f32], partials: &[f32]) -> Vec<LiveTurn> {
        let grid = self.pipe.partial_grid;
        let dim = self.pipe.models.embedding.embedding_dim();
        let ready =
            |p: usize| (p * grid + PARTIAL_FRAMES - 1) * MEL_HOP + MEL_WINDOW - MEL_PAD <= end;
        let lookup = |p: usize| {
            (ready(p) && (p + 1) * dim <= partials.len()).then(|| &partials[p * dim..(p + 1) * dim])
        };
        let mut updates = Vec::new();
        self.label_window(end, scores, &lookup, &mut updates);
        self.received = self.received.max(end);
        self.duration_s = self.received as f64 / f64::from(SAMPLE_RATE);
        updates
    }

    /// Drops samples, mel frames and partials no future window needs.
    fn forget(&mut self) {
        let next_start = self.next_end.saturating_sub(WINDOW_SAMPLES);
        let partial_step = self.pipe.partial_grid * MEL_HOP;
        let keep_partial = next_start
            .div_ceil(partial_step)
            .min(self.partial_base + self.partials.len());
        if keep_partial > self.partial_base {
            self.partials.drain(..keep_partial - self.partial_base);
            self.partial_base = keep_partial;
        }
        let next_partial = self.partial_base + self.partials.len();
        let width = self.pipe.models.embedding.frame_width();
        let keep_mel =
            (next_partial * self.pipe.partial_grid).min(self.mel_base + self.frames_held());
        if keep_mel > self.mel_base {
            self.mel.drain(..(keep_mel - self.mel_base) * width);
            self.mel_base = keep_mel;
        }
        // In padded coordinates: the next mel frame and the next window.
        let keep_padded =
            ((self.mel_base + self.frames_held()) * MEL_HOP).min(next_start + MEL_PAD);
        if keep_padded > self.pad_base {
            self.padded.drain(..keep_padded - self.pad_base);
            self.pad_base = keep_padded;
        }
    }

    /// Closes every open turn and returns the session as a diarization:
    /// rare speakers merged into their nearest neighbour, each speaker's
    /// centroid in `embeddings`. `turns` are all the turns handed out
    /// (the caller keeps them; this state does not).
    pub fn finish(&mut self, turns: &[LiveTurn], uri: &str, backend: &str) -> FinishedLive {
        let mut closing = Vec::new();
        self.turns.close_all(&mut closing);
        let target = self.clusters.consolidate(self.params.min_support);
        let mut all: Vec<Turn> = Vec::new();
        let mut latest: std::collections::BTreeMap<u64, &LiveTurn> = Default::default();
        for t in turns.iter().chain(&closing) {
            latest.insert(t.id, t);
        }
        for t in latest.values() {
            let speaker = speaker_index(&t.speaker)
                .and_then(|s| target.get(s).copied())
                .map(label)
                .unwrap_or_else(|| t.speaker.clone());
            all.push(Turn {
                start_s: t.start_s,
                end_s: t.end_s,
                speaker,
            });
        }
        let mut d = Diarization::new(
            uri,
            self.duration_s,
            merge_touching(all),
            backend,
            StageTimings::default(),
        );
        for (s, speaker) in self.clusters.speakers().iter().enumerate() {
            if target.get(s) == Some(&s) && d.speakers.iter().any(|x| x.speaker == label(s)) {
                d.embeddings.insert(label(s), speaker.centroid());
            }
        }
        FinishedLive {
            diarization: d,
            closed: closing,
        }
    }
}

/// The end of a live session.
#[derive(Debug, Clone)]
pub struct FinishedLive {
    /// Every turn, rare speakers merged, with speaker centroids.
    pub diarization: Diarization,
    /// The turns that were still open, now closed (already in `diarization`).
    pub closed: Vec<LiveTurn>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_steps_are_rejected() {
        let params = LiveParams {
            step_s: 0.0,
            ..LiveParams::default()
        };
        assert!(LiveState::new(params, PipelineParams::default()).is_err());
    }
}
