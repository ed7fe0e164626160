//! The edit list (`moov/trak/edts/elst`) of an MP4/M4A audio track.
//!
//! AAC encoders prime the stream with 1024–2112 frames of silence and pad the
//! end to a whole frame; MP4 files record both in the edit list rather than in
//! packets. symphonia 0.6's MP4 reader ignores edit lists (its packets carry
//! no trim), so without this every timestamp of an AAC file would be late by
//! the priming (~23–48 ms) and the file ~40 ms long. Only the first edit that
//! plays media is honoured: that is what encoders write for audio.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The `moov` box is read whole; above this it is assumed broken and ignored.
const MAX_MOOV_BYTES: u64 = 64 << 20;

/// Frames to drop from the decoded track, at the track's sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EditTrim {
    /// Leading frames to discard (encoder priming).
    pub skip_frames: u64,
    /// Frames to keep after the skipped ones; `None` keeps everything.
    pub keep_frames: Option<u64>,
}

/// The edit-list trim of track `track_id` (or of the first sound track), or
/// `None` when the file has no usable edit list. Never fails: a missing or odd
/// edit list only means the decoded length is left as it is.
pub(crate) fn audio_edit_trim(path: &Path, track_id: u32, sample_rate: u32) -> Option<EditTrim> {
    let moov = read_moov(&mut File::open(path).ok()?)?;
    let movie_timescale = child(&moov, b"mvhd").and_then(timescale)?;
    let traks: Vec<&[u8]> = children(&moov)
        .filter(|(t, _)| t == b"trak")
        .map(|(_, b)| b)
        .collect();
    let sound: Vec<Trak> = traks.iter().filter_map(|b| Trak::parse(b)).collect();
    let trak = sound
        .iter()
        .find(|t| t.id == track_id)
        .or_else(|| sound.first())?;
    let edit = trak.first_media_edit?;
    let rate = u128::from(sample_rate);
    let skip_frames = u128::from(edit.media_time) * rate / u128::from(trak.media_timescale);
    let keep_frames = (edit.segment_duration > 0).then(|| {
        // Round: the segment is given in the (often coarser) movie timescale.
        (u128::from(edit.segment_duration) * rate + u128::from(movie_timescale) / 2)
            / u128::from(movie_timescale)
    });
    Some(EditTrim {
        skip_frames: u64::try_from(skip_frames).ok()?,
        keep_frames: keep_frames.and_then(|k| u64::try_from(k).ok()),
    })
}

struct Trak {
    id: u32,
    media_timescale: u32,
    first_media_edit: Option<Edit>,
}

#[derive(Clone, Copy)]
struct Edit {
    segment_duration: u64,
    media_time: u64,
}

impl Trak {
    /// Parses a `trak` box body; `None` unless it is a sound track.
    fn parse(body: &[u8]) -> Option<Self> {
        let mdia = child(body, b"mdia")?;
        let hdlr = child(mdia, b"hdlr")?;
        // version+flags (4), pre_defined (4), handler_type (4)
        if hdlr.get(8..12)? != b"soun" {
            return None;
        }
        let tkhd = child(body, b"tkhd")?;
        // version 1 has 64-bit creation/modification times before the id.
        let id_at = if *tkhd.first()? == 1 { 20 } else { 12 };
        let id = be_u32(tkhd, id_at)?;
        let media_timescale = child(mdia, b"mdhd").and_then(timescale)?;
        let first_media_edit = child(body, b"edts")
            .and_then(|edts| child(edts, b"elst"))
            .and_then(first_media_edit);
        Some(Self {
            id,
            media_timescale,
            first_media_edit,
        })
    }
}

/// The first edit that plays media; empty edits (`media_time == -1`) before it are skipped.
fn first_media_edit(elst: &[u8]) -> Option<Edit> {
    let version = *elst.first()?;
    let entry_len = if version == 1 { 20 } else { 12 };
    // The declared count is only a claim: a corrupt box can say 0xFFFFFFFF
    // over a few bytes, so only entries the box really holds are read.
    let held = elst.len().saturating_sub(8) / entry_len;
    let count = (be_u32(elst, 4)? as usize).min(held);
    (0..count).find_map(|i| {
        let at = 8 + i * entry_len;
        let (segment_duration, media_time) = if version == 1 {
            (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64)
        } else {
            (
                u64::from(be_u32(elst, at)?),
                i64::from(be_u32(elst, at + 4)? as i32),
            )
        };
        let media_time = u64::try_from(media_time).ok()?;
        Some(Edit {
            segment_duration,
            media_time,
        })
    })
}

/// Timescale of an `mvhd` or `mdhd` body.
fn timescale(body: &[u8]) -> Option<u32> {
    // version 1 has 64-bit creation/modification times before the timescale.
    let at = if *body.first()? == 1 { 20 } else { 12 };
    be_u32(body, at).filter(|&t| t > 0)
}

/// Reads the body of the top-level `moov` box, skipping over everything else.
fn read_moov(file: &mut File) -> Option<Vec<u8>> {
    let len = file.metadata().ok()?.len();
    let mut pos = 0_u64;
    while pos + 8 <= len {
        file.seek(SeekFrom::Start(pos)).ok()?;
        let mut head = [0_u8; 16];
        file.read_exact(&mut head[..8]).ok()?;
        let mut size = u64::from(be_u32(&head, 0)?);
        let mut header_len = 8;
        if size == 1 {
            file.read_exact(&mut head[8..]).ok()?;
            size = be_u64(&head, 8)?;
            header_len = 16;
        } else if size == 0 {
            size = len - pos;
        }
        if size < header_len {
            return None;
        }
        if &head[4..8] == b"moov" {
            let body_len = size - header_len;
            if body_len > MAX_MOOV_BYTES || pos + size > len {
                return None;
            }
            let mut body = vec![0; body_len as usize];
            file.read_exact(&mut body).ok()?;
            return Some(body);
        }
        pos = pos.checked_add(size)?;
    }
    None
}

/// The body of the first child box of type `kind`.
fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(body).find(|(t, _)| t == kind).map(|(_, b)| b)
}

/// (type, body) of each child box; stops at the first malformed header.
fn children(body: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = body;
    std::iter::from_fn(move || {
        let size = be_u32(rest, 0)? as usize;
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header_len, size) = match size {
            0 => (8, rest.len()),
            1 => (16, usize::try_from(be_u64(rest, 8)?).ok()?),
            n => (8, n),
        };
        let item = rest.get(header_len..size)?;
        rest = &rest[size..];
        Some((kind, item))
    })
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn full_box_v0(kind: &[u8; 4], fields: &[u32]) -> Vec<u8> {
        let mut body = vec![0_u8; 4];
        for f in fields {
            body.extend_from_slice(&f.to_be_bytes());
        }
        mp4_box(kind, &body)
    }

    /// A minimal MP4 whose sound track 1 has the given edit entries.
    fn write_mp4(edits: &[(u32, i32)], movie_ts: u32, media_ts: u32) -> tempfile::NamedTempFile {
        let mut elst_fields = vec![edits.len() as u32];
        for &(dur, time) in edits {
            elst_fields.extend([dur, time as u32, 0x0001_0000]);
        }
        let elst = full_box_v0(b"elst", &elst_fields);
        let edts = mp4_box(b"edts", &elst);
        // tkhd v0: creation, modification, track_id, ...
        let tkhd = full_box_v0(b"tkhd", &[0, 0, 1, 0, 0]);
        let mdhd = full_box_v0(b"mdhd", &[0, 0, media_ts, 0]);
        let mut hdlr_body = vec![0_u8; 8];
        hdlr_body.extend_from_slice(b"soun");
        hdlr_body.extend_from_slice(&[0; 12]);
        let hdlr = mp4_box(b"hdlr", &hdlr_body);
        let mdia = mp4_box(b"mdia", &[mdhd, hdlr].concat());
        let trak = mp4_box(b"trak", &[tkhd, edts, mdia].concat());
        let mvhd = full_box_v0(b"mvhd", &[0, 0, movie_ts, 0]);
        let moov = mp4_box(b"moov", &[mvhd, trak].concat());
        let ftyp = mp4_box(b"ftyp", b"M4A \0\0\0\0");
        let mdat = mp4_box(b"mdat", &[0; 100]);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), [ftyp, mdat, moov].concat()).unwrap();
        file
    }

    #[test]
    fn priming_and_length_come_from_the_first_media_edit() {
        // ffmpeg's AAC: 1024 frames priming at 44.1 kHz, 1 s kept, movie timescale 1000.
        let f = write_mp4(&[(1000, 1024)], 1000, 44_100);
        let trim = audio_edit_trim(f.path(), 1, 44_100).unwrap();
        assert_eq!(
            trim,
            EditTrim {
                skip_frames: 1024,
                keep_frames: Some(44_100)
            }
        );
    }

    #[test]
    fn leading_empty_edit_is_skipped_and_timescales_are_converted() {
        let f = write_mp4(&[(500, -1), (2000, 2112)], 1000, 48_000);
        let trim = audio_edit_trim(f.path(), 1, 24_000).unwrap();
        assert_eq!(trim.skip_frames, 1056);
        assert_eq!(trim.keep_frames, Some(48_000));
    }

    #[test]
    fn an_entry_count_past_the_box_is_bounded_by_its_length() {
        // One empty edit, but the count claims 0xFFFFFFFF entries: reading
        // must stop at the box's end, not walk four billion missing entries.
        let f = write_mp4(&[(500, -1)], 1000, 48_000);
        let mut bytes = std::fs::read(f.path()).unwrap();
        let at = bytes.windows(4).position(|w| w == b"elst").unwrap() + 8;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        std::fs::write(f.path(), &bytes).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(audio_edit_trim(f.path(), 1, 48_000), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn garbage_and_truncated_files_give_none() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"\0\0\0\x10moov\0\0").unwrap();
        assert_eq!(audio_edit_trim(f.path(), 1, 44_100), None);
        std::fs::write(f.path(), b"plain text, not an mp4").unwrap();
        assert_eq!(audio_edit_trim(f.path(), 1, 44_100), None);
    }
}
