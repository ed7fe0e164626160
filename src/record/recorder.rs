//! The recorder: one writer thread per recording.
//!
//! The thread opens the input (so a cpal stream never leaves the thread
//! that made it), then every few milliseconds drains the capture ring,
//! downmixes and resamples to 16 kHz with the same code as files, appends
//! to the crash-safe WAV, commits it at least twice a second, meters the
//! level, and hands the new 16 kHz samples to `on_audio` (the live
//! diarization feed). It stops on `stop`, at the duration limit, or when
//! the device fails, and in every case finishes the file it has.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::wav::CrashSafeWav;
use crate::audio::capture::{self, CaptureHealth, InputFormat};
use crate::audio::{Resampler, SAMPLE_RATE, downmix_into};
use crate::error::{Error, Result};

/// How often the writer drains the ring.
const POLL: Duration = Duration::from_millis(20);
/// The WAV is made valid on disk at least this often (the promise is once
/// a second; twice leaves room for a slow disk).
pub const COMMIT_EVERY: Duration = Duration::from_millis(500);
/// A device that delivers nothing for this long is treated as gone.
const STALL: Duration = Duration::from_secs(3);
/// Peak level under which the input counts as silent (about −50 dBFS).
pub const SILENCE_PEAK: f32 = 0.003;
/// Samples per level-meter reading (100 ms at 16 kHz).
const METER_SAMPLES: usize = 1_600;

/// Receives each block of new 16 kHz mono samples and the index of its
/// first sample in the recording.
pub type AudioSink = Box<dyn FnMut(u64, &[f32]) + Send>;

/// An opened input: the ring's reader, its format and whatever keeps the
/// device running (dropped to stop it).
pub struct OpenedInput {
    pub format: InputFormat,
    pub samples: rtrb::Consumer<f32>,
    pub health: Arc<CaptureHealth>,
    pub name: String,
    pub keep_alive: Box<dyn Any>,
}

/// Opens the input on the writer thread. The default opens a microphone;
/// tests pass a synthetic source.
pub type InputOpener = Box<dyn FnOnce() -> Result<OpenedInput> + Send>;

/// The opener for a microphone: `device` as `--device` takes it, `None`
/// for the system default.
pub fn microphone(device: Option<String>) -> InputOpener {
    Box::new(move || {
        let (capture, samples) = capture::open_input(device.as_deref())?;
        Ok(OpenedInput {
            format: capture.format,
            health: Arc::clone(&capture.health),
            name: capture.device_name.clone(),
            samples,
            keep_alive: Box::new(capture),
        })
    })
}

/// What to record and where.
pub struct RecorderConfig {
    /// The WAV to create; it must not exist yet.
    pub path: PathBuf,
    pub input: InputOpener,
    /// Stop by itself after this many seconds of audio.
    pub max_duration_s: Option<f64>,
    pub on_audio: Option<AudioSink>,
}

/// Why a recording ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", content = "message", rename_all = "kebab-case")]
pub enum Ended {
    Stopped,
    Duration,
    /// The device failed or vanished; the audio before it is kept.
    DeviceLost(String),
    /// Writing failed (disk full...); what reached the disk is kept.
    Failed(String),
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSummary {
    pub path: PathBuf,
    pub duration_s: f64,
    pub ended: Ended,
    /// Native samples lost because the writer fell behind the device.
    pub dropped_samples: u64,
    pub device: String,
}

/// A live view of the recording for the UI.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecorderStatus {
    pub elapsed_s: f64,
    /// Peak of the last 100 ms, 0..1.
    pub level: f32,
    /// Seconds since the input was last above the silence threshold.
    pub silent_s: f64,
    pub finished: bool,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    finished: AtomicBool,
    samples: AtomicU64,
    level_bits: AtomicU32,
    last_sound_sample: AtomicU64,
}

/// A recording in progress. Dropping it stops and finishes the file.
pub struct Recorder {
    shared: Arc<Shared>,
    path: PathBuf,
    device: String,
    thread: Option<JoinHandle<Result<RecordingSummary>>>,
}

impl Recorder {
    /// Creates the WAV, opens the input and starts recording. Returns once
    /// audio is flowing, or with the error that prevented it (the empty
    /// file is then removed).
    pub fn start(config: RecorderConfig) -> Result<Recorder> {
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<String>>(1);
        let thread_shared = Arc::clone(&shared);
        let path = config.path.clone();
        let thread = std::thread::Builder::new()
            .name("diarist-recorder".into())
            .spawn(move || run(config, &thread_shared, ready_tx))
            .map_err(|e| Error::AudioInput(format!("cannot start the recorder thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(device)) => Ok(Recorder {
                shared,
                path,
                device,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e,
                _ => Error::AudioInput("the recorder thread stopped while starting".into()),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The input device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn status(&self) -> RecorderStatus {
        let samples = self.shared.samples.load(Ordering::Relaxed);
        let last_sound = self.shared.last_sound_sample.load(Ordering::Relaxed);
        RecorderStatus {
            elapsed_s: samples as f64 / f64::from(SAMPLE_RATE),
            level: f32::from_bits(self.shared.level_bits.load(Ordering::Relaxed)),
            silent_s: samples.saturating_sub(last_sound) as f64 / f64::from(SAMPLE_RATE),
            finished: self.is_finished(),
        }
    }

    /// True once the recording ended by itself (duration, device lost).
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Stops (if still running), finishes the file and reports on it.
    pub fn stop(mut self) -> Result<RecordingSummary> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<RecordingSummary> {
        self.shared.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::recording(&self.path, "the recorder thread panicked")),
            None => Err(Error::recording(&self.path, "already stopped")),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop_and_join();
        }
    }
}

/// The writer thread.
fn run(
    config: RecorderConfig,
    shared: &Shared,
    ready: crossbeam_channel::Sender<Result<String>>,
) -> Result<RecordingSummary> {
    let started = (|| {
        let wav = CrashSafeWav::create(&config.path)?;
        let input = match (config.input)() {
            Ok(input) => input,
            Err(e) => {
                discard(wav);
                return Err(e);
            }
        };
        let resampler = match Resampler::new(input.format.sample_rate) {
            Ok(r) => r,
            Err(e) => {
                discard(wav);
                return Err(e);
            }
        };
        Ok((wav, input, resampler))
    })();
    let (wav, input, resampler) = match started {
        Ok(parts) => parts,
        Err(e) => {
            shared.finished.store(true, Ordering::Release);
            let _ = ready.send(Err(e));
            return Err(Error::AudioInput("the recording did not start".into()));
        }
    };
    let _ = ready.send(Ok(input.name.clone()));
    let limit = config
        .max_duration_s
        .map(|s| (s.max(0.0) * f64::from(SAMPLE_RATE)).round() as u64);
    let mut writer = Writer {
        wav,
        resampler,
        channels: input.format.channels,
        on_audio: config.on_audio,
        shared,
        limit,
        native: Vec::new(),
        mono: Vec::new(),
        out: Vec::new(),
        meter_peak: 0.0,
        meter_count: 0,
    };
    let result = writer.record(input);
    shared.finished.store(true, Ordering::Release);
    result
}

/// Removes a recording that never got audio.
fn discard(wav: CrashSafeWav) {
    if let Ok(path) = wav.finish() {
        let _ = std::fs::remove_file(path);
    }
}

struct Writer<'a> {
    wav: CrashSafeWav,
    resampler: Resampler,
    channels: usize,
    on_audio: Option<AudioSink>,
    shared: &'a Shared,
    limit: Option<u64>,
    native: Vec<f32>,
    mono: Vec<f32>,
    out: Vec<f32>,
    meter_peak: f32,
    meter_count: usize,
}

impl Writer<'_> {
    fn record(&mut self, mut input: OpenedInput) -> Result<RecordingSummary> {
        let mut last_commit = Instant::now();
        let mut last_audio = Instant::now();
        let ended = loop {
            std::thread::sleep(POLL);
            let got = match self.drain(&mut input.samples, false) {
                Ok(n) => n,
                Err(e) => break Ended::Failed(e.to_string()),
            };
            if got > 0 {
                last_audio = Instant::now();
            }
            if last_commit.elapsed() >= COMMIT_EVERY {
                if let Err(e) = self.wav.commit() {
                    break Ended::Failed(e.to_string());
                }
                last_commit = Instant::now();
            }
            if self.limit.is_some_and(|l| self.wav.samples() >= l) {
                break Ended::Duration;
            }
            if self.shared.stop.load(Ordering::Acquire) {
                break Ended::Stopped;
            }
            if let Some(message) = input.health.failure() {
                break Ended::DeviceLost(format!("{}: {message}", input.name));
            }
            if last_audio.elapsed() >= STALL {
                break Ended::DeviceLost(format!(
                    "{}: no audio for {} s; the device stopped or was unplugged",
                    input.name,
                    STALL.as_secs()
                ));
            }
        };
        // Stop the device, then keep what is still in the ring.
        let dropped = input.health.dropped_samples();
        drop(input.keep_alive);
        let mut ended = ended;
        if let Err(e) = self.drain(&mut input.samples, true) {
            ended = Ended::Failed(e.to_string());
        }
        let duration_s = self.wav.duration_s();
        let path = self.wav.path().to_path_buf();
        let wav = std::mem::replace(&mut self.wav, placeholder());
        if let Err(e) = wav.finish() {
            // The commits before still left a valid file; `recover` fixes the rest.
            ended = Ended::Failed(e.to_string());
        }
        Ok(RecordingSummary {
            path,
            duration_s,
            ended,
            dropped_samples: dropped,
            device: input.name,
        })
    }

    /// Moves everything in the ring through downmix, resampler, WAV and
    /// sink; at the end also flushes the resampler. Returns native samples read.
    fn drain(&mut self, ring: &mut rtrb::Consumer<f32>, last: bool) -> Result<usize> {
        self.native.clear();
        let n = ring.slots();
        if let Ok(chunk) = ring.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            self.native.extend_from_slice(a);
            self.native.extend_from_slice(b);
            chunk.commit_all();
        }
        // Whole frames only; a torn frame waits for the next drain.
        let whole = self.native.len() - self.native.len() % self.channels.max(1);
        self.mono.clear();
        downmix_into(&self.native[..whole], self.channels, &mut self.mono);
        self.out.clear();
        self.resampler.process(&self.mono, &mut self.out)?;
        if last {
            self.resampler.finish(&mut self.out)?;
        }
        if let Some(limit) = self.limit {
            let room = limit.saturating_sub(self.wav.samples());
            self.out
                .truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        if !self.out.is_empty() {
            let start = self.wav.samples();
            self.wav.append(&self.out)?;
            if let Some(sink) = self.on_audio.as_mut() {
                sink(start, &self.out);
            }
            self.meter(start);
            self.shared
                .samples
                .store(self.wav.samples(), Ordering::Relaxed);
        }
        Ok(n)
    }

    fn meter(&mut self, start: u64) {
        for (i, &s) in self.out.iter().enumerate() {
            self.meter_peak = self.meter_peak.max(s.abs());
            self.meter_count += 1;
            if self.meter_count == METER_SAMPLES {
                let peak = self.meter_peak;
                self.shared
                    .level_bits
                    .store(peak.to_bits(), Ordering::Relaxed);
                if peak > SILENCE_PEAK {
                    self.shared
                        .last_sound_sample
                        .store(start + i as u64 + 1, Ordering::Relaxed);
                }
                self.meter_peak = 0.0;
                self.meter_count = 0;
            }
        }
    }
}

/// A stand-in left in the writer after its WAV was finished.
fn placeholder() -> CrashSafeWav {
    CrashSafeWav::closed()
}

/// `recordings/2024-05-01_14-03-59.wav` under `dir`, in UTC, with `-2`,
/// `-3`... appended when that name is taken.
pub fn new_recording_path(dir: &Path) -> PathBuf {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let mut path = dir.join(format!("{stamp}.wav"));
    let mut n = 2;
    while path.exists() || super::wav::marker_path(&path).exists() {
        path = dir.join(format!("{stamp}-{n}.wav"));
        n += 1;
    }
    path
}

/// `YYYY-MM-DD_HH-MM-SS` in UTC (days-to-civil, H. Hinnant's algorithm).
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}_{:02}-{:02}-{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        let at = |s: u64| std::time::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(utc_stamp(at(0)), "1970-01-01_00-00-00");
        assert_eq!(utc_stamp(at(951_782_400)), "2000-02-29_00-00-00");
        assert_eq!(utc_stamp(at(1_735_689_599)), "2024-12-31_23-59-59");
    }
}
