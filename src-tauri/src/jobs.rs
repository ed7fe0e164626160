//! The jobs the window submitted: each one's `Channel` (per-job events go
//! there, as STYLE.md convention 6 asks) and, once done, its result with the
//! user's edits. The engine's event thread calls [`Jobs::route`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use diarist::Diarization;
use diarist::export::SpeakerNames;
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

#[derive(Default)]
pub struct Jobs {
    entries: Mutex<HashMap<JobId, Entry>>,
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
