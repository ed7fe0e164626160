//! Meeting recording: microphone to a crash-safe WAV, and the bridge from
//! live speaker labels to the final ones.
//!
//! `wav` writes a WAV that is valid on disk at every commit, `recover`
//! repairs the ones a crash left unfinished, `recorder` runs the writer
//! thread between the capture ring and the file, and `mapping` carries the
//! live speakers (and the names the user gave them) over to the speakers
//! of the final, offline pass.

pub mod mapping;
pub mod recorder;
pub mod recover;
pub mod wav;

pub use mapping::{SpeakerMapping, map_live_to_final};
pub use recorder::{
    AudioSink, Ended, InputOpener, OpenedInput, Recorder, RecorderConfig, RecorderStatus,
    RecordingSummary, microphone, new_recording_path,
};
pub use recover::{Recovered, RecoveryReport, plan as plan_recovery, recover, repair};
pub use wav::{CrashSafeWav, marker_path};
