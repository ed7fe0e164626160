//! Microphone capture with cpal: the real-time callback only converts the
//! device's samples to `f32` and pushes them into a lock-free ring (rtrb).
//!
//! The callback never allocates, locks or blocks: when the ring is full
//! (the reader fell behind by more than its capacity) the newest samples are
//! dropped and counted. Everything else (downmix, resampling, writing,
//! level metering) happens on the reader's thread, see `crate::record`.
//!
//! A device error (unplugged headset, sound server gone) is recorded in
//! [`CaptureHealth`] by the error callback; the reader polls it and stops
//! the recording cleanly, keeping what was captured.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{Sample, SampleFormat, SizedSample};

use crate::error::{Error, Result};

/// Seconds of native-rate audio the ring holds: how long the reader may
/// stall (e.g. on a slow disk) before samples are lost.
pub const RING_SECONDS: f64 = 4.0;

/// The native format of an open input stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputFormat {
    /// Samples per second per channel, in Hz.
    pub sample_rate: u32,
    /// Interleaved channels per frame.
    pub channels: usize,
}

/// An input device as offered to the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputDevice {
    /// What `--device` (or the app's picker) takes: the host's device id,
    /// e.g. `alsa:default`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The system's default input.
    pub is_default: bool,
}

/// What the real-time side reports to the reader, through atomics only.
#[derive(Debug, Default)]
pub struct CaptureHealth {
    failed: AtomicBool,
    /// Written by the error callback (not the data callback), read after
    /// `failed` is seen; `try_lock` so that callback never waits either.
    message: Mutex<Option<String>>,
    dropped: AtomicU64,
}

impl CaptureHealth {
    /// The device failed (disconnected, server gone): the message says how.
    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        let message = self.message.lock().ok().and_then(|m| m.clone());
        Some(message.unwrap_or_else(|| "the input device failed".into()))
    }

    /// Samples dropped because the ring was full.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Marks the input as failed. Called by cpal's error callback; other
    /// inputs (tests, files) report through it too.
    pub fn fail(&self, message: String) {
        if let Ok(mut m) = self.message.try_lock()
            && m.is_none()
        {
            *m = Some(message);
        }
        self.failed.store(true, Ordering::Release);
    }
}

/// A running input stream. Dropping it stops the device. cpal streams are
/// not `Send` on every platform, so keep it on the thread that opened it.
pub struct Capture {
    _stream: cpal::Stream,
    /// The format the samples in the ring have.
    pub format: InputFormat,
    /// The device's name, for messages.
    pub device_name: String,
    pub health: Arc<CaptureHealth>,
}

/// Every input device the default host offers.
pub fn list_input_devices() -> Result<Vec<InputDevice>> {
    let host = cpal::default_host();
    let default_id = host
        .default_input_device()
        .and_then(|d| d.id().ok())
        .map(|id| id.to_string());
    let devices = host
        .input_devices()
        .map_err(|e| Error::AudioInput(format!("cannot list input devices: {e}")))?;
    Ok(devices
        .filter_map(|d| {
            let id = d.id().ok()?.to_string();
            let name = device_name(&d);
            Some(InputDevice {
                is_default: default_id.as_deref() == Some(id.as_str()),
                id,
                name,
            })
        })
        .collect())
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.to_string())
        .unwrap_or_else(|_| d.to_string())
}

/// Finds an input device by id (`alsa:default`), exact name, or a
/// case-insensitive part of its name; `None` takes the system default.
fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device> {
    let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) else {
        return host.default_input_device().ok_or_else(|| {
            Error::AudioInput("no input device: the system has no default microphone".into())
        });
    };
    let devices: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| Error::AudioInput(format!("cannot list input devices: {e}")))?
        .collect();
    let lower = wanted.to_lowercase();
    let by = |f: &dyn Fn(&cpal::Device) -> bool| devices.iter().find(|d| f(d)).cloned();
    by(&|d| d.id().is_ok_and(|id| id.to_string() == wanted))
        .or_else(|| by(&|d| device_name(d) == wanted || d.to_string() == wanted))
        .or_else(|| by(&|d| device_name(d).to_lowercase().contains(&lower)))
        .ok_or_else(|| {
            let known: Vec<String> = devices
                .iter()
                .filter_map(|d| d.id().ok().map(|id| id.to_string()))
                .collect();
            Error::AudioInput(format!(
                "no input device matches {wanted:?}; available: {}",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ))
        })
}

/// Opens `device` (or the default input) in its native format and starts
/// it. Samples arrive interleaved as `f32` in the returned consumer.
pub fn open_input(device: Option<&str>) -> Result<(Capture, rtrb::Consumer<f32>)> {
    let host = cpal::default_host();
    let device = find_device(&host, device)?;
    let name = device_name(&device);
    let supported = device
        .default_input_config()
        .map_err(|e| Error::AudioInput(format!("{name}: no usable input format: {e}")))?;
    let format = InputFormat {
        sample_rate: supported.sample_rate(),
        channels: usize::from(supported.channels()),
    };
    if format.channels == 0 || format.sample_rate == 0 {
        return Err(Error::AudioInput(format!(
            "{name}: the device reports {} channels at {} Hz",
            format.channels, format.sample_rate
        )));
    }
    let capacity = ((f64::from(format.sample_rate) * RING_SECONDS) as usize) * format.channels;
    let (producer, consumer) = rtrb::RingBuffer::<f32>::new(capacity);
    let health = Arc::new(CaptureHealth::default());
    let sample_format = supported.sample_format();
    let config: cpal::StreamConfig = supported.into();
    let stream = match sample_format {
        SampleFormat::I8 => build::<i8>(&device, config, producer, &health),
        SampleFormat::I16 => build::<i16>(&device, config, producer, &health),
        SampleFormat::I32 => build::<i32>(&device, config, producer, &health),
        SampleFormat::I64 => build::<i64>(&device, config, producer, &health),
        SampleFormat::U8 => build::<u8>(&device, config, producer, &health),
        SampleFormat::U16 => build::<u16>(&device, config, producer, &health),
        SampleFormat::U32 => build::<u32>(&device, config, producer, &health),
        SampleFormat::U64 => build::<u64>(&device, config, producer, &health),
        SampleFormat::F32 => build::<f32>(&device, config, producer, &health),
        SampleFormat::F64 => build::<f64>(&device, config, producer, &health),
        other => {
            return Err(Error::AudioInput(format!(
                "{name}: unsupported sample format {other}"
            )));
        }
    }
    .map_err(|e| Error::AudioInput(format!("{name}: cannot open the input stream: {e}")))?;
    stream
        .play()
        .map_err(|e| Error::AudioInput(format!("{name}: cannot start the input stream: {e}")))?;
    Ok((
        Capture {
            _stream: stream,
            format,
            device_name: name,
            health,
        },
        consumer,
    ))
}

fn build<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut producer: rtrb::Producer<f32>,
    health: &Arc<CaptureHealth>,
) -> std::result::Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: cpal::FromSample<T>,
{
    let on_data = Arc::clone(health);
    let on_error = Arc::clone(health);
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| push_samples(&mut producer, data, &on_data),
        move |err: cpal::Error| {
            use cpal::ErrorKind::*;
            match err.kind() {
                // Recoverable hiccups: the stream goes on.
                Xrun | RealtimeDenied | DeviceChanged => {}
                _ => on_error.fail(err.to_string()),
            }
        },
        None,
    )
}

/// The real-time part: convert and copy into the ring, nothing else.
fn push_samples<T>(producer: &mut rtrb::Producer<f32>, data: &[T], health: &CaptureHealth)
where
    T: Sample,
    f32: cpal::FromSample<T>,
{
    let n = data.len().min(producer.slots());
    if n < data.len() {
        health
            .dropped
            .fetch_add((data.len() - n) as u64, Ordering::Relaxed);
    }
    if let Ok(chunk) = producer.write_chunk_uninit(n) {
        chunk.fill_from_iter(data[..n].iter().map(|s| s.to_sample::<f32>()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_samples_become_unit_range_floats_and_overflow_is_counted() {
        let (mut producer, mut consumer) = rtrb::RingBuffer::<f32>::new(4);
        let health = CaptureHealth::default();
        push_samples(&mut producer, &[i16::MIN, 0, 16_384], &health);
        push_samples(&mut producer, &[1_i16, 2, 3], &health);
        assert_eq!(health.dropped_samples(), 2);
        let got: Vec<f32> = std::iter::from_fn(|| consumer.pop().ok()).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], -1.0);
        assert_eq!(got[1], 0.0);
        assert!((got[2] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn the_first_failure_message_is_kept() {
        let health = CaptureHealth::default();
        assert_eq!(health.failure(), None);
        health.fail("unplugged".into());
        health.fail("later".into());
        assert_eq!(health.failure().as_deref(), Some("unplugged"));
    }
}
