//! File decoding with symphonia 0.6: probe, open, and stream packets as
//! 16 kHz mono.
//!
//! MP3 and Vorbis decoders drop their packets' priming/padding themselves
//! (symphonia's gapless mode); for any other decoder, packet trims are applied
//! here, and MP4 edit lists (ignored by symphonia's MP4 reader) through
//! [`mp4_edit`](super::mp4_edit).
//!
//! Damage never shifts time: an undecodable packet becomes silence of its
//! length, as does a run of FLAC frames the reader dropped, and past
//! [`MAX_CORRUPT_PACKETS`] the file is declared damaged. A file cut short
//! yields what was decoded before the cut.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::codecs::audio::{
    AudioCodecId, AudioCodecParameters, AudioDecoder, AudioDecoderOptions,
};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia::core::units::TimeBase;

use super::mp4_edit::{EditTrim, audio_edit_trim};
use super::{AudioInfo, MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ, Resampler, downmix_into};
use crate::error::{Error, Result};

/// Corrupt packets skipped before a file is declared damaged. Enough to ride
/// over a few glitches in a long recording, few enough to stop early on a file
/// that is mostly garbage.
const MAX_CORRUPT_PACKETS: usize = 32;

/// No codec puts more than a few seconds in a packet; a longer stated
/// duration is a damaged header and must not turn into a huge run of silence.
const MAX_PACKET_SECONDS: u64 = 10;

const CHAINED_STREAM: &str = "the audio format changes mid-stream (a chained stream), which is not supported; convert the file to WAV first";

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
        // Only a hint, capped at 30 min (115 MB): a lying header must not allocate gigabytes.
        let frames = secs * f64::from(super::SAMPLE_RATE);
        out.reserve(frames.clamp(0.0, 30.0 * 60.0 * 16_000.0) as usize);
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
    time_base: Option<TimeBase>,
    resampler: Resampler,
    /// Leading frames still to drop, and frames still allowed after them (MP4 edit list).
    edit: Option<EditTrim>,
    /// One decoded packet, interleaved, at the native rate.
    interleaved: Vec<f32>,
    /// The same packet after the downmix.
    mono: Vec<f32>,
    /// Decoded frames that reached the resampler, at the native rate (silence excluded).
    frames_decoded: u64,
    /// Silent frames standing in for corrupt or missing packets.
    frames_silent: u64,
    corrupt_packets: usize,
    /// What was wrong with the last corrupt packet, for the final message.
    last_corrupt: Option<String>,
    /// Whether to fill jumps in packet timestamps with silence (FLAC only).
    fill_gaps: bool,
    /// Timestamp the next packet should have, when filling gaps.
    next_ts: Option<i64>,
    ended: bool,
}

impl AudioStream {
    /// Opens `path` and prepares its first audio track for decoding.
    pub fn open(path: &Path) -> Result<Self> {
        let Source {
            reader,
            track_id,
            time_base,
            params,
            info,
            edit,
            fill_gaps,
        } = Source::open(path)?;
        let decoder = make_decoder(path, &params)?;
        let resampler =
            Resampler::new(info.sample_rate).map_err(|e| Error::decode(path, e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            info,
            reader,
            decoder,
            track_id,
            time_base,
            resampler,
            edit,
            interleaved: Vec::new(),
            mono: Vec::new(),
            frames_decoded: 0,
            frames_silent: 0,
            corrupt_packets: 0,
            last_corrupt: None,
            fill_gaps,
            next_ts: None,
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
                    self.fill_gap(&packet, out)?;
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
                            self.push_decoded(channels, head, frames - tail, out)?;
                        }
                        Err(SymphoniaError::ResetRequired) => {
                            return Err(self.error(CHAINED_STREAM));
                        }
                        // Damaged packets also surface as "unsupported feature" (AAC) or
                        // limit errors: all are bounded by the corrupt-packet count.
                        Err(e) => {
                            self.note_corrupt(1, describe_decode_error(&e))?;
                            let frames = self.packet_frames(&packet);
                            self.push_silence(frames, out)?;
                        }
                    }
                }
                Ok(Some(_other_track)) => {}
                Ok(None) => self.end(out)?,
                // A file cut short: keep what was decoded.
                Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.end(out)?
                }
                Err(e @ SymphoniaError::DecodeError(_)) => {
                    self.note_corrupt(1, describe_decode_error(&e))?
                }
                Err(SymphoniaError::ResetRequired) => return Err(self.error(CHAINED_STREAM)),
                Err(e) => return Err(self.error(describe_decode_error(&e))),
            }
        }
        Ok(out.len() - start)
    }

    /// Downmixes and resamples frames `from..to` of the decoded packet, after the edit list.
    fn push_decoded(
        &mut self,
        channels: usize,
        from: usize,
        to: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (from, to) = self.apply_edit(from as u64, to.max(from) as u64);
        // Packets hold at most a few seconds, so these fit in usize.
        let (from, to) = (from as usize * channels, to as usize * channels);
        self.mono.clear();
        downmix_into(&self.interleaved[from..to], channels, &mut self.mono);
        self.frames_decoded += self.mono.len() as u64;
        self.push_mono(out)
    }

    /// Stands in for an undecodable packet with silence of its length, so that
    /// everything after it keeps its time.
    fn push_silence(&mut self, frames: u64, out: &mut Vec<f32>) -> Result<()> {
        let (from, to) = self.apply_edit(0, frames);
        self.mono.clear();
        self.mono.resize((to - from) as usize, 0.0);
        self.frames_silent += to - from;
        self.push_mono(out)
    }

    /// Narrows frames `from..to` of the current packet to what the MP4 edit list presents.
    fn apply_edit(&mut self, mut from: u64, mut to: u64) -> (u64, u64) {
        if let Some(edit) = self.edit.as_mut() {
            let skip = edit.skip_frames.min(to - from);
            edit.skip_frames -= skip;
            from += skip;
            if let Some(keep) = edit.keep_frames.as_mut() {
                let kept = (*keep).min(to - from);
                *keep -= kept;
                to = from + kept;
            }
        }
        (from, to)
    }

    fn push_mono(&mut self, out: &mut Vec<f32>) -> Result<()> {
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
            let reason = match (&self.last_corrupt, self.info.duration_s) {
                (Some(what), _) => format!(
                    "the file is damaged: none of its audio could be decoded ({} corrupt packets, the last: {what})",
                    self.corrupt_packets
                ),
                (_, Some(secs)) if secs > 0.0 => format!(
                    "the file is damaged: its header announces {secs:.1} s of audio but none could be decoded"
                ),
                _ => "the file contains no audio samples".to_owned(),
            };
            return Err(self.error(reason));
        }
        let path = &self.path;
        self.resampler
            .finish(out)
            .map_err(|e| Error::decode(path, e.to_string()))
    }

    /// Valid frames in `packet`, at the track's sample rate, capped to a few seconds.
    fn packet_frames(&self, packet: &Packet) -> u64 {
        let rate = u64::from(self.info.sample_rate);
        let frames = match self.time_base {
            Some(tb) => {
                u128::from(packet.dur.get()) * u128::from(tb.numer.get()) * u128::from(rate)
                    / u128::from(tb.denom.get())
            }
            None => u128::from(packet.dur.get()),
        };
        u64::try_from(frames)
            .unwrap_or(u64::MAX)
            .min(rate * MAX_PACKET_SECONDS)
    }

    /// Counts `lost` undecodable or missing packets; fails once there are too many.
    fn note_corrupt(&mut self, lost: usize, what: String) -> Result<()> {
        self.corrupt_packets += lost;
        let at_s =
            (self.frames_decoded + self.frames_silent) as f64 / f64::from(self.info.sample_rate);
        if self.corrupt_packets > MAX_CORRUPT_PACKETS {
            return Err(self.error(format!(
                "the file is damaged: more than {MAX_CORRUPT_PACKETS} corrupt packets (the last near {at_s:.1} s: {what})"
            )));
        }
        self.last_corrupt = Some(what);
        Ok(())
    }

    /// Fills a jump in FLAC frame numbers (frames the reader dropped for a bad
    /// CRC) with silence. Other readers either never drop packets or number
    /// them in ways (e.g. MP3 priming) that would look like false gaps.
    fn fill_gap(&mut self, packet: &Packet, out: &mut Vec<f32>) -> Result<()> {
        if !self.fill_gaps {
            return Ok(());
        }
        let expected = self
            .next_ts
            .replace(packet.pts.get().saturating_add_unsigned(packet.dur.get()));
        let Some(expected) = expected else {
            return Ok(());
        };
        let gap = packet.pts.get().saturating_sub(expected);
        if gap > 0 {
            let gap = gap as u64;
            let lost = gap.div_ceil(packet.dur.get().max(1)) as usize;
            self.note_corrupt(lost, format!("{gap} frames missing"))?;
            let frames = gap.min(u64::from(self.info.sample_rate) * MAX_PACKET_SECONDS);
            self.push_silence(frames, out)?;
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
fn packet_trim(packet: &Packet, frames: usize) -> (usize, usize) {
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
    time_base: Option<TimeBase>,
    params: AudioCodecParameters,
    info: AudioInfo,
    edit: Option<EditTrim>,
    fill_gaps: bool,
}

impl Source {
    fn open(path: &Path) -> Result<Self> {
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probe = |source: Box<dyn MediaSource>| {
            let mss = MediaSourceStream::new(source, Default::default());
            symphonia::default::get_probe().probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
        };
        let reader = match probe(Box::new(open_file(path)?)) {
            Ok(reader) => reader,
            // Some readers (OGG) scan the end of a seekable file for its duration and
            // give up on a damaged or missing last page. Read front to back instead.
            Err(e) if is_damage(&e) => probe(Box::new(Unseekable(open_file(path)?)))
                .map_err(|_| Error::decode(path, describe_probe_error(&e)))?,
            Err(e) => return Err(Error::decode(path, describe_probe_error(&e))),
        };

        let track = pick_track(path, reader.as_ref())?;
        let (track_id, time_base) = (track.id, track.time_base);
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
            return Err(Error::decode(
                path,
                "the header gives no channels (0 channels)",
            ));
        }

        let format = reader.format_info().short_name;
        let (is_mp4, fill_gaps) = (format == "isomp4", format == "flac");
        let edit = if is_mp4 {
            audio_edit_trim(path, track_id, sample_rate)
        } else {
            None
        };
        let duration_s = duration_s(track, sample_rate, edit);
        if duration_s == Some(0.0) {
            return Err(Error::decode(
                path,
                "the file contains no audio samples (its header says 0 s)",
            ));
        }
        Ok(Self {
            track_id,
            time_base,
            params,
            info: AudioInfo {
                sample_rate,
                channels,
                codec,
                duration_s,
            },
            edit,
            fill_gaps,
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
            io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory, not an audio file",
            ),
        ));
    }
    if meta.len() == 0 {
        return Err(Error::decode(path, "the file is empty (0 bytes)"));
    }
    File::open(path).map_err(|e| Error::io(path, e))
}

/// A file presented as a stream that cannot seek, so readers skip end-of-file scans.
struct Unseekable(File);

impl io::Read for Unseekable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl io::Seek for Unseekable {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl MediaSource for Unseekable {
    fn is_seekable(&self) -> bool {
        false
    }

    fn byte_len(&self) -> Option<u64> {
        None
    }
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
        .map_err(|e| {
            Error::decode(
                path,
                format!(
                    "cannot start the audio decoder: {}",
                    describe_decode_error(&e)
                ),
            )
        })
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

/// Damaged or cut-off data, as opposed to an unknown format.
fn is_damage(e: &SymphoniaError) -> bool {
    match e {
        SymphoniaError::DecodeError(_) => true,
        SymphoniaError::IoError(io) => io.kind() == io::ErrorKind::UnexpectedEof,
        _ => false,
    }
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
