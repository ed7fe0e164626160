//! Channel downmix: interleaved frames of any width to one mono channel.
//!
//! Every channel gets the same weight. Speech usually sits in one or two
//! channels of a multichannel file, and an equal-weight average keeps it
//! without needing per-layout mixing matrices (which would also add the
//! centre channel twice for 5.1 material if borrowed from playback mixers).

/// Appends the per-frame average of `interleaved` (frames of `channels` samples) to `out`.
///
/// A trailing partial frame is ignored. With `channels == 1` the samples are copied
/// unchanged, and with `channels == 0` nothing is appended.
pub fn downmix_into(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    match channels {
        0 => {}
        1 => out.extend_from_slice(interleaved),
        _ => {
            let scale = 1.0 / channels as f32;
            out.extend(
                interleaved
                    .chunks_exact(channels)
                    .map(|frame| frame.iter().sum::<f32>() * scale),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_is_copied_bit_exact() {
        let input = [0.1_f32, -0.7, 1.0, f32::MIN_POSITIVE];
        let mut out = vec![9.0];
        downmix_into(&input, 1, &mut out);
        assert_eq!(out, [9.0, 0.1, -0.7, 1.0, f32::MIN_POSITIVE]);
    }

    #[test]
    fn stereo_frames_are_averaged() {
        let mut out = Vec::new();
        downmix_into(&[1.0, 0.0, 0.5, -0.5, -1.0, -0.5], 2, &mut out);
        assert_eq!(out, [0.5, 0.0, -0.75]);
    }

    #[test]
    fn eight_channels_with_one_active_channel_scale_by_an_eighth() {
        let mut frame = [0.0_f32; 8];
        frame[5] = 0.8;
        let mut out = Vec::new();
        downmix_into(&frame, 8, &mut out);
        assert_eq!(out.len(), 1);
        assert!((out[0] - 0.1).abs() < 1e-7);
    }

    #[test]
    fn partial_trailing_frame_and_zero_channels_append_nothing_extra() {
        let mut out = Vec::new();
        downmix_into(&[1.0, 1.0, 1.0], 2, &mut out);
        assert_eq!(out, [1.0]);
        downmix_into(&[1.0, 1.0], 0, &mut out);
        assert_eq!(out, [1.0]);
    }
}
