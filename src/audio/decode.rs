//! File decoding with symphonia 0.6: probe, open, and stream packets as
//! 16 kHz mono.
//!
//! MP3 and Vorbis decoders drop their packets' priming/padding themselves
//! (symphonia's gapless mode); for any other decoder, packet trims are applied
//! here, and MP4 edit lists (ignored by symphonia's MP4 reader) through
//! [`mp4_edit`](super::mp4_edit).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::codecs::audio::{AudioCodecId, AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::mp4_edit::{EditTrim, audio_edit_trim};
use super::{AudioInfo, MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ, Resampler, downmix_into};
use crate::error::{Error, Result};

/// Corrupt packets skipped before a file is declared damaged. Enough to ride
/// over a few glitches in a long recording, few enough to stop early on a file
/// that is mostly garbage.
const MAX_CORRUPT_PACKETS: usize = 32;

/// Reads the header of `path` and says what it holds, without decoding audio.
///
/// Fails exactly when [`AudioStream::open`] would: an unreadable path, an
/// unknown container, no audio track, an unsupported codec or an absurd header.
pub fn probe(path: &Path) -> Result<AudioInfo> {
    Ok(Source::open(path)?.info)
}

/// Decodes the whole of `path` to 16 kHz mono.
///
/// Holds the full result in memory (~230 MB for 4 hours); use [`AudioStream`]
/// to process long files in bounded memory.
pub fn decode_file(path: &Path) -> Result<Vec<f32>> {
    let mut stream = AudioStream::open(path)?;
    let mut out = Vec::new();
    if let Some(secs) = stream.info().duration_s {
        // Only a hint: a lying header must not make us allocate gigabytes.
        let frames = secs * f64::from(super::SAMPLE_RATE);
        out.reserve((frames.clamp(0.0, 1e9) as usize) + 1);
    }
    while stream.read_chunk(&mut out)? > 0 {}
    Ok(out)
}

/// An open audio file that yields 16 kHz mono `f32` samples, one packet at a time.
pub struct AudioStream {
    path: PathBuf,
    info: AudioInfo,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    resampler: Resampler,
    /// Leading frames still to drop, and frames still allowed after them (MP4 edit list).
    edit: Option<EditTrim>,
    /// One decoded packet, interleaved, at the native rate.
    interleaved: Vec<f32>,
    /// The same packet after the downmix.
    mono: Vec<f32>,
    /// Frames that reached the resampler, at the native rate.
    frames_decoded: u64,
    corrupt_packets: usize,
    ended: bool,
}

impl AudioStream {
    /// Opens `path` and prepares its first audio track for decoding.
    pub fn open(path: &Path) -> Result<Self> {
        let Source {
            reader,
            track_id,
            params,
            info,
            edit,
        } = Source::open(path)?;
        let decoder = make_decoder(path, &params)?;
        let resampler = Resampler::new(info.sample_rate).map_err(|e| Error::decode(path, e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            info,
            reader,
            decoder,
            track_id,
            resampler,
            edit,
            interleaved: Vec::new(),
            mono: Vec::new(),
            frames_decoded: 0,
            corrupt_packets: 0,
            ended: false,
        })
    }

    /// What the file's header says.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// Appends the next decoded, downmixed, resampled samples to `out`; returns how many were
    /// appended; 0 means end of stream. Memory stays bounded (one packet / one resampler chunk).
    pub fn read_chunk(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        let start = out.len();
        while out.len() == start && !self.ended {
            match self.reader.next_packet() {
                Ok(Some(packet)) if packet.track_id == self.track_id => {
                    match self.decoder.decode(&packet) {
                        Ok(buf) => {
                            let rate = buf.spec().rate();
                            if rate != self.info.sample_rate {
                                return Err(self.error(format!(
                                    "the sample rate changes mid-stream ({} Hz to {rate} Hz), which is not supported; convert the file to WAV first",
                                    self.info.sample_rate,
                                )));
                            }
                            let channels = buf.spec().channels().count();
                            buf.copy_to_vec_interleaved(&mut self.interleaved);
                            let frames = buf.frames();
                            let (head, tail) = packet_trim(&packet, frames);
                            self.push_frames(channels, head, frames - tail, out)?;
                        }
                        Err(e @ (SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_))) => {
                            self.skip_corrupt_packet(&e)?;
                        }
                        Err(e) => return Err(self.error(describe_decode_error(&e))),
                    }
                }
                Ok(Some(_other_track)) => {}
                Ok(None) => self.end(out)?,
                // A file cut short: keep what was decoded.
                Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.end(out)?
                }
                Err(e @ SymphoniaError::DecodeError(_)) => self.skip_corrupt_packet(&e)?,
                Err(SymphoniaError::ResetRequired) => {
                    return Err(self.error(
                        "the audio format changes mid-stream (a chained stream), which is not supported; convert the file to WAV first",
                    ));
                }
                Err(e) => return Err(self.error(describe_decode_error(&e))),
            }
        }
        Ok(out.len() - start)
    }

    /// Downmixes and resamples frames `from..to` of the decoded packet, after the edit list.
    fn push_frames(&mut self, channels: usize, from: usize, to: usize, out: &mut Vec<f32>) -> Result<()> {
        let (mut from, mut to) = (from as u64, to.max(from) as u64);
        if let Some(edit) = self.edit.as_mut() {
            let skip = edit.skip_frames.min(to - from);
            edit.skip_frames -= skip;
            from += skip;
            if let Some(keep) = edit.keep_frames.as_mut() {
                let kept = keep.to_owned().min(to - from);
                *keep -= kept;
                to = from + kept;
            }
        }
        // Packets hold at most a few seconds, so these fit in usize.
        let (from, to) = (from as usize * channels, to as usize * channels);
        self.mono.clear();
        downmix_into(&self.interleaved[from..to], channels, &mut self.mono);
        self.frames_decoded += self.mono.len() as u64;
        let path = &self.path;
        self.resampler
            .process(&self.mono, out)
            .map_err(|e| Error::decode(path, e.to_string()))?;
        if self.edit.is_some_and(|e| e.keep_frames == Some(0)) {
            // The edit list's end: the rest is encoder padding.
            self.end(out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<f32>) -> Result<()> {
        self.ended = true;
        if self.frames_decoded == 0 {
            return Err(self.error("the file contains no audio samples"));
        }
        let path = &self.path;
        self.resampler
            .finish(out)
            .map_err(|e| Error::decode(path, e.to_string()))
    }

    fn skip_corrupt_packet(&mut self, e: &SymphoniaError) -> Result<()> {
        self.corrupt_packets += 1;
        if self.corrupt_packets > MAX_CORRUPT_PACKETS {
            let at_s = self.frames_decoded as f64 / f64::from(self.info.sample_rate);
            return Err(self.error(format!(
                "the file is damaged: more than {MAX_CORRUPT_PACKETS} corrupt packets (the last near {at_s:.1} s: {})",
                describe_decode_error(e)
            )));
        }
        Ok(())
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::decode(&self.path, reason)
    }
}

/// Frames to cut from the start and end of a decoded packet. Decoders in
/// gapless mode (MP3, Vorbis) already cut them: then the decoded length
/// equals the packet's valid duration and nothing more is cut.
fn packet_trim(packet: &symphonia::core::packet::Packet, frames: usize) -> (usize, usize) {
    let (start, end) = (packet.trim_start.get(), packet.trim_end.get());
    if start + end == 0 || frames as u64 != packet.block_dur().get() {
        return (0, 0);
    }
    let start = start.min(frames as u64) as usize;
    let end = end.min((frames - start) as u64) as usize;
    (start, end)
}

/// A probed file: its reader, chosen track and validated header.
struct Source {
    reader: Box<dyn FormatReader>,
    track_id: u32,
    params: AudioCodecParameters,
    info: AudioInfo,
    edit: Option<EditTrim>,
}

impl Source {
    fn open(path: &Path) -> Result<Self> {
        let file = open_file(path)?;
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let reader = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| Error::decode(path, describe_probe_error(&e)))?;

        let track = pick_track(path, reader.as_ref())?;
        let track_id = track.id;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .cloned()
            .ok_or_else(|| Error::decode(path, "the audio track has no codec parameters"))?;
        let sample_rate = check_rate(path, params.sample_rate)?;
        let (codec, decoder_channels) = {
            let decoder = make_decoder(path, &params)?;
            let channels = decoder.codec_params().channels.as_ref().map(|c| c.count());
            (decoder.codec_info().short_name.to_owned(), channels)
        };
        let channels = params
            .channels
            .as_ref()
            .map(|c| c.count())
            .or(decoder_channels)
            .unwrap_or(0);
        if channels == 0 {
            return Err(Error::decode(path, "the header gives no channels (0 channels)"));
        }

        let is_mp4 = reader.format_info().short_name == "isomp4";
        let edit = if is_mp4 {
            audio_edit_trim(path, track_id, sample_rate)
        } else {
            None
        };
        let duration_s = duration_s(track, sample_rate, edit);
        if duration_s == Some(0.0) {
            return Err(Error::decode(path, "the file contains no audio samples (its header says 0 s)"));
        }
        Ok(Self {
            track_id,
            params,
            info: AudioInfo {
                sample_rate,
                channels,
                codec,
                duration_s,
            },
            edit,
            reader,
        })
    }
}

/// Opens `path` for reading, with the plain-words checks symphonia cannot make.
fn open_file(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::IsADirectory, "is a directory, not an audio file"),
        ));
    }
    if meta.len() == 0 {
        return Err(Error::decode(path, "the file is empty (0 bytes)"));
    }
    File::open(path).map_err(|e| Error::io(path, e))
}

/// The default audio track, or an error saying why there is none.
fn pick_track<'a>(path: &Path, reader: &'a dyn FormatReader) -> Result<&'a Track> {
    if let Some(track) = reader.default_track(TrackType::Audio) {
        return Ok(track);
    }
    let other = reader.tracks().len();
    let reason = if other > 0 {
        format!(
            "contains no audio track (only {other} video or other track{}); nothing to diarize",
            if other == 1 { "" } else { "s" }
        )
    } else {
        "contains no audio track; nothing to diarize".to_owned()
    };
    Err(Error::decode(path, reason))
}

fn check_rate(path: &Path, rate: Option<u32>) -> Result<u32> {
    match rate {
        None => Err(Error::decode(path, "the header gives no sample rate")),
        Some(hz) if !(MIN_INPUT_RATE_HZ..=MAX_INPUT_RATE_HZ).contains(&hz) => Err(Error::decode(
            path,
            format!(
                "the header gives a sample rate of {hz} Hz, which is not a valid audio rate (expected {MIN_INPUT_RATE_HZ}–{MAX_INPUT_RATE_HZ} Hz); the file is probably damaged"
            ),
        )),
        Some(hz) => Ok(hz),
    }
}

fn make_decoder(path: &Path, params: &AudioCodecParameters) -> Result<Box<dyn AudioDecoder>> {
    let codecs = symphonia::default::get_codecs();
    if codecs.get_audio_decoder(params.codec).is_none() {
        return Err(Error::decode(path, unsupported_codec_reason(params.codec)));
    }
    codecs
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| Error::decode(path, format!("cannot start the audio decoder: {}", describe_decode_error(&e))))
}

fn unsupported_codec_reason(codec: AudioCodecId) -> String {
    let name = match codec {
        codec_ids::CODEC_ID_OPUS => "Opus",
        codec_ids::CODEC_ID_AC3 => "AC-3 (Dolby Digital)",
        codec_ids::CODEC_ID_EAC3 => "E-AC-3 (Dolby Digital Plus)",
        codec_ids::CODEC_ID_DCA => "DTS",
        codec_ids::CODEC_ID_WMA => "WMA",
        codec_ids::CODEC_ID_SPEEX => "Speex",
        codec_ids::CODEC_ID_WAVPACK => "WavPack",
        codec_ids::CODEC_ID_MONKEYS_AUDIO => "Monkey's Audio",
        symphonia::core::codecs::audio::CODEC_ID_NULL_AUDIO => "an unknown codec",
        _ => "this codec",
    };
    format!(
        "{name} audio is not supported; convert the file first, e.g. `ffmpeg -i INPUT -ar 16000 -ac 1 OUTPUT.wav`"
    )
}

/// Duration in seconds from the header, after the MP4 edit list when there is one.
fn duration_s(track: &Track, sample_rate: u32, edit: Option<EditTrim>) -> Option<f64> {
    if let Some(frames) = edit.and_then(|e| e.keep_frames) {
        return Some(frames as f64 / f64::from(sample_rate));
    }
    if let Some(frames) = track.num_frames {
        let skip = edit.map_or(0, |e| e.skip_frames);
        return Some(frames.saturating_sub(skip) as f64 / f64::from(sample_rate));
    }
    let (tb, dur) = (track.time_base?, track.duration?);
    Some(tb.calc_duration(dur)?.as_secs_f64())
}

fn describe_probe_error(e: &SymphoniaError) -> String {
    match e {
        SymphoniaError::Unsupported(_) => {
            "not a recognised audio file: its contents match no supported format (WAV, FLAC, MP3, M4A/MP4, OGG, MKV/WebM, AIFF); it may be damaged or have the wrong extension".to_owned()
        }
        SymphoniaError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the file is cut off before the end of its header".to_owned()
        }
        other => format!("cannot read the file's header: {}", describe_decode_error(other)),
    }
}

fn describe_decode_error(e: &SymphoniaError) -> String {
    match e {
        SymphoniaError::DecodeError(what) => format!("malformed data ({what})"),
        SymphoniaError::Unsupported(what) => format!("unsupported feature ({what})"),
        SymphoniaError::LimitError(what) => format!("a safety limit was exceeded ({what})"),
        SymphoniaError::IoError(io) => format!("read error ({io})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_reason_names_the_codec_and_suggests_converting() {
        let r = unsupported_codec_reason(codec_ids::CODEC_ID_OPUS);
        assert!(r.contains("Opus audio is not supported"), "{r}");
        assert!(r.contains("ffmpeg"), "{r}");
    }

    #[test]
    fn absurd_rates_are_rejected_with_the_rate_and_valid_ones_pass() {
        let p = Path::new("x.wav");
        for hz in [0, 1, 999, 768_001] {
            let err = check_rate(p, Some(hz)).unwrap_err().to_string();
            assert!(err.contains(&format!("{hz} Hz")), "{err}");
            assert!(err.starts_with("x.wav: "), "{err}");
        }
        for hz in [1_000, 8_000, 384_000, 768_000] {
            assert_eq!(check_rate(p, Some(hz)).unwrap(), hz);
        }
    }

    #[test]
    fn permission_denied_is_an_io_error_naming_the_file() {
        let err = Error::io("/a/b.wav", io::Error::from(io::ErrorKind::PermissionDenied));
        let msg = err.to_string();
        assert!(msg.starts_with("/a/b.wav: "), "{msg}");
        assert!(msg.to_lowercase().contains("permission denied"), "{msg}");
    }
}
