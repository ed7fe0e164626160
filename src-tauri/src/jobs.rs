//! The jobs the window submitted: each one's `Channel` (per-job events go
//! there, as STYLE.md convention 6 asks) and, once done, its result with the
//! user's edits. The engine's event thread calls [`Jobs::route`].
//!
//! A recording's live session leaves the names the user gave its live
//! speakers here; the recording's final pass inherits them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use diarist::Diarization;
use diarist::export::SpeakerNames;
use diarist::record::map_live_to_final;
use diarist::runtime::{Engine, Event, JobId, JobSpec};
use tauri::ipc::Channel;

use crate::edit;
use crate::error::CommandError;

struct Entry {
    path: PathBuf,
    /// Dropped when the job ends: nothing more will be sent.
    channel: Option<Channel<Event>>,
    result: Option<Diarization>,
    names: SpeakerNames,
}

/// A finished result with the names the user gave its speakers.
#[derive(Debug, Clone)]
pub struct Edited {
    pub path: PathBuf,
    pub result: Diarization,
    pub names: SpeakerNames,
}

/// A recording's live session, until the recording's final pass is done.
struct LiveNames {
    path: PathBuf,
    /// The live diarization (with the live speakers' centroids), once the
    /// session ended.
    live: Option<Diarization>,
    names: SpeakerNames,
}

#[derive(Default)]
pub struct Jobs {
    entries: Mutex<HashMap<JobId, Entry>>,
    live: Mutex<HashMap<JobId, LiveNames>>,
}

impl Jobs {
    /// Submits `spec` and registers `channel` for its events. The registry
    /// stays locked across the submit, so the router (which locks it too)
    /// cannot see the job's first event before its channel is known.
    pub fn submit(
        &self,
        engine: &Engine,
        spec: JobSpec,
        channel: Channel<Event>,
    ) -> Result<JobId, CommandError> {
        let mut entries = lock(&self.entries);
        let path = spec.path.clone();
        let job = engine.submit(spec)?;
        entries.insert(
            job,
            Entry {
                path,
                channel: Some(channel),
                result: None,
                names: SpeakerNames::new(),
            },
        );
        Ok(job)
    }

    /// Sends a per-job event to its window channel and keeps the result of
    /// a finished job. Returns false for events of jobs this app did not
    /// submit (there are none today, but the recorder may add some).
    pub fn route(&self, event: &Event) -> bool {
        let Some(job) = event.job() else {
            return false;
        };
        let mut entries = lock(&self.entries);
        let Some(entry) = entries.get_mut(&job) else {
            return false;
        };
        if let Event::Done { result, .. } = event {
            entry.result = Some((**result).clone());
            if let Some(names) = self.names_from_live(&entry.path, result) {
                entry.names = names;
            }
        }
        if let Some(channel) = &entry.channel
            && channel.send(event.clone()).is_err()
        {
            // The page was reloaded: its channel is gone, the job goes on.
            entry.channel = None;
        }
        if matches!(
            event,
            Event::Done { .. } | Event::Failed { .. } | Event::Cancelled { .. }
        ) {
            entry.channel = None;
        }
        true
    }

    /// `live_job` is the live session of the recording at `path`.
    pub fn expect_live(&self, live_job: JobId, path: PathBuf) {
        lock(&self.live).insert(
            live_job,
            LiveNames {
                path,
                live: None,
                names: SpeakerNames::new(),
            },
        );
    }

    /// A live session that never got its recording (the input failed).
    pub fn forget_live(&self, live_job: JobId) {
        lock(&self.live).remove(&live_job);
    }

    /// Names a live speaker; a blank name restores the label.
    pub fn rename_live(
        &self,
        live_job: JobId,
        label: &str,
        name: &str,
    ) -> Result<(), CommandError> {
        let mut live = lock(&self.live);
        let session = live
            .get_mut(&live_job)
            .ok_or(CommandError::unknown_job(live_job.0))?;
        session.names.insert(label, name.trim());
        Ok(())
    }

    /// Keeps the live result of a session for its recording's final pass;
    /// false when `live_job` is no live session of this app.
    pub fn live_done(&self, live_job: JobId, result: &Diarization) -> bool {
        match lock(&self.live).get_mut(&live_job) {
            Some(session) => {
                session.live = Some(result.clone());
                true
            }
            None => false,
        }
    }

    /// The final speakers' names when `result` is the final pass of a
    /// recording whose live speakers were named: each name goes to the final
    /// speaker that voice became. Consumed: a later re-run starts afresh.
    fn names_from_live(&self, path: &Path, result: &Diarization) -> Option<SpeakerNames> {
        let mut live = lock(&self.live);
        let job = live
            .iter()
            .find(|(_, s)| s.path == path && s.live.is_some())
            .map(|(job, _)| *job)?;
        let session = live.remove(&job)?;
        let live_result = session.live?;
        Some(map_live_to_final(&live_result, result, &session.names).names)
    }

    pub fn path(&self, job: JobId) -> Option<PathBuf> {
        lock(&self.entries).get(&job).map(|e| e.path.clone())
    }

    pub fn edited(&self, job: JobId) -> Result<Edited, CommandError> {
        let entries = lock(&self.entries);
        let entry = entries.get(&job).ok_or(CommandError::unknown_job(job.0))?;
        let result = entry
            .result
            .clone()
            .ok_or(CommandError::unknown_job(job.0))?;
        Ok(Edited {
            path: entry.path.clone(),
            result,
            names: entry.names.clone(),
        })
    }

    /// Gives `label` a display name; a blank name restores the label.
    pub fn rename(&self, job: JobId, label: &str, name: &str) -> Result<(), CommandError> {
        self.with_result(job, |result, names| {
            if !result.speakers.iter().any(|s| s.speaker == label) {
                return Err(CommandError::new(
                    "invalid-option",
                    format!("no speaker {label} in this result"),
                ));
            }
            names.insert(label, name.trim());
            Ok(())
        })
    }

    /// Merges `from` into `into` and returns the new result.
    pub fn merge(&self, job: JobId, from: &str, into: &str) -> Result<Edited, CommandError> {
        self.with_result(job, |result, names| {
            *result = edit::merge_speakers(result, from, into)?;
            *names = edit::merge_names(names, from, into);
            Ok(())
        })?;
        self.edited(job)
    }

    fn with_result<T>(
        &self,
        job: JobId,
        f: impl FnOnce(&mut Diarization, &mut SpeakerNames) -> Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        let mut entries = lock(&self.entries);
        let entry = entries
            .get_mut(&job)
            .ok_or(CommandError::unknown_job(job.0))?;
        let result = entry
            .result
            .as_mut()
            .ok_or(CommandError::unknown_job(job.0))?;
        f(result, &mut entry.names)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
