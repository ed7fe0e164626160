//! What the engine tells the outside world, and the fan-out to subscribers.
//!
//! Events are one tagged enum, serialised as `{"event": "done", "data": {...}}`
//! with camelCase names, like Tauri's updater `DownloadEvent`, so the app can
//! forward them to the UI unchanged.

use std::sync::Mutex;

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

use super::device::Backend;
use super::stats::StatsSnapshot;
use crate::Diarization;
use crate::error::Error;
use crate::progress::Stage;

/// Identifies one submitted job; ids increase in submission order from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {}", self.0)
    }
}

/// A job that failed on a GPU and was re-run on the CPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    pub from: Backend,
    pub reason: String,
}

/// A typed error for the UI: `code` is stable, `message` is for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub message: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        Self {
            code: error_code(e),
            message: e.to_string(),
        }
    }
}

/// A stable machine-readable name for each kind of error.
pub fn error_code(e: &Error) -> &'static str {
    match e {
        Error::Candle(_) => "compute",
        Error::Io { .. } => "io",
        Error::Decode { .. } => "decode",
        Error::Model { .. } => "model",
        Error::InvalidOption(_) => "invalid-option",
        Error::Parse { .. } => "parse",
        Error::Cancelled => "cancelled",
        Error::QueueFull { .. } => "queue-full",
        Error::EngineStopped => "engine-stopped",
        Error::Backend { .. } => "backend",
        Error::Panic(_) => "panic",
        Error::AudioInput(_) => "audio-input",
        Error::Recording { .. } => "recording",
        #[allow(unreachable_patterns)]
        _ => "internal",
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(
    tag = "event",
    content = "data",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// Accepted into the queue; `position` 0 means next to run.
    Queued {
        job: JobId,
        path: std::path::PathBuf,
        position: usize,
    },
    Started {
        job: JobId,
        backend: Backend,
        /// Windows per network call chosen from free memory.
        batch_size: usize,
    },
    Progress {
        job: JobId,
        stage: Stage,
        done: usize,
        total: usize,
    },
    Done {
        job: JobId,
        result: Box<Diarization>,
        /// Where the result was computed (the CPU after a fallback).
        backend: Backend,
        fallback: Option<Fallback>,
        wall_s: f64,
    },
    Failed {
        job: JobId,
        error: ErrorInfo,
    },
    Cancelled {
        job: JobId,
    },
    /// The engine now runs on `backend` (at start, on safe mode, on fallback).
    BackendChanged {
        backend: Backend,
        reason: String,
        safe_mode: bool,
    },
    /// `job` failed on `from` and is being re-run on the CPU.
    Fallback {
        job: JobId,
        from: Backend,
        reason: String,
    },
    /// A live session's turn appeared or grew (replace by `turn.id`).
    LiveTurn {
        job: JobId,
        turn: crate::pipeline::live::LiveTurn,
    },
    Stats(StatsSnapshot),
}

impl Event {
    /// The job this event is about, if it is a per-job event.
    pub fn job(&self) -> Option<JobId> {
        match self {
            Event::Queued { job, .. }
            | Event::Started { job, .. }
            | Event::Progress { job, .. }
            | Event::Done { job, .. }
            | Event::Failed { job, .. }
            | Event::Cancelled { job }
            | Event::Fallback { job, .. }
            | Event::LiveTurn { job, .. } => Some(*job),
            Event::BackendChanged { .. } | Event::Stats(_) => None,
        }
    }
}

struct Subscriber {
    tx: Sender<Event>,
    wants_stats: bool,
}

/// The list of subscribers. A subscriber whose receiver was dropped is
/// removed the next time an event is sent to it.
#[derive(Default)]
pub(crate) struct Hub {
    subscribers: Mutex<Vec<Subscriber>>,
}

impl Hub {
    /// Unbounded, because dropping a `Done` for a slow reader would lose a
    /// result; progress events are per batch, so the backlog stays small.
    pub fn subscribe(&self, wants_stats: bool) -> Receiver<Event> {
        let (tx, rx) = crossbeam_channel::unbounded();
        lock(&self.subscribers).push(Subscriber { tx, wants_stats });
        rx
    }

    /// Sends a job or engine event to every subscriber.
    pub fn emit(&self, event: Event) {
        let mut subs = lock(&self.subscribers);
        subs.retain(|s| s.tx.send(event.clone()).is_ok());
    }

    /// Sends stats to those who asked for them; returns how many remain, so
    /// the sampler can stop when nobody listens.
    pub fn emit_stats(&self, stats: StatsSnapshot) -> usize {
        let mut subs = lock(&self.subscribers);
        subs.retain(|s| !s.wants_stats || s.tx.send(Event::Stats(stats.clone())).is_ok());
        subs.iter().filter(|s| s.wants_stats).count()
    }

    pub fn stats_subscribers(&self) -> usize {
        lock(&self.subscribers)
            .iter()
            .filter(|s| s.wants_stats)
            .count()
    }
}

/// Locks a mutex, ignoring poisoning: every engine lock guards plain data
/// that stays consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_tagged_camel_case() {
        let e = Event::BackendChanged {
            backend: Backend::Cpu,
            reason: "safe mode".into(),
            safe_mode: true,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["event"], "backendChanged");
        assert_eq!(json["data"]["safeMode"], true);
        assert_eq!(json["data"]["backend"], "cpu");

        let e = Event::Failed {
            job: JobId(7),
            error: ErrorInfo::from(&Error::decode("a.wav", "not audio")),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["event"], "failed");
        assert_eq!(json["data"]["job"], 7);
        assert_eq!(json["data"]["error"]["code"], "decode");
        assert_eq!(json["data"]["error"]["message"], "a.wav: not audio");
    }

    #[test]
    fn dropped_receivers_unsubscribe() {
        let hub = Hub::default();
        let keep = hub.subscribe(true);
        let gone = hub.subscribe(true);
        let jobs_only = hub.subscribe(false);
        drop(gone);
        assert_eq!(hub.emit_stats(StatsSnapshot::default()), 1);
        assert!(matches!(keep.try_recv(), Ok(Event::Stats(_))));
        assert!(
            jobs_only.try_recv().is_err(),
            "stats go only to stats subscribers"
        );

        hub.emit(Event::Cancelled { job: JobId(1) });
        assert!(matches!(jobs_only.try_recv(), Ok(Event::Cancelled { .. })));
        drop(keep);
        assert_eq!(hub.emit_stats(StatsSnapshot::default()), 0);
    }
}
