//! Recording a meeting from the app: one recording at a time, its audio to
//! a crash-safe WAV in the app's data folder and to the engine's live
//! session. The window, the tray item and the global shortcut all start and
//! stop it through [`toggle`], [`start`] and [`stop`]; its status (elapsed
//! time, input level, silence) and live turns reach the window as app
//! events, because a recording started from the tray has no page call to
//! hang a channel on. Stopping hands the file to the window, which queues
//! it like a dropped file; the final result inherits the names given to
//! live speakers (see `Jobs::expect_live`).
//!
//! At start, recordings a crash left unfinished are repaired and offered
//! to the user (`AppState::recovered`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diarist::record::{
    self, Ended, InputOpener, Recorder, RecorderConfig, RecorderStatus, Recovered,
};
use diarist::runtime::{Event, JobId, LiveSpec};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::error::CommandError;
use crate::shell::{self, MAIN_WINDOW, Shell};
use crate::tray;

/// Starts or stops a recording from anywhere (tray, shortcut).
pub const SHORTCUT: &str = "CmdOrCtrl+Shift+R";

/// The folder under the app's data directory that holds recordings.
pub const FOLDER: &str = "recordings";

/// How often the window hears the elapsed time and the input level.
const STATUS_EVERY: Duration = Duration::from_millis(100);

pub mod events {
    pub const STARTED: &str = "recording-started";
    pub const STATUS: &str = "recording-status";
    pub const LIVE_TURN: &str = "live-turn";
    pub const STOPPED: &str = "recording-stopped";
}

/// Opens the input to record from; the app's is the microphone the user
/// chose, tests give a synthetic one.
pub type InputFactory = Box<dyn Fn(Option<String>) -> InputOpener + Send + Sync>;

/// The app's recordings: where they go, what records them and the one in
/// progress.
pub struct Recordings {
    dir: Option<PathBuf>,
    input: InputFactory,
    active: Mutex<Option<Active>>,
    /// Repaired at start and offered to the user.
    recovered: Vec<Recovered>,
    /// Unfinished recordings that could not be repaired, with the reason.
    unrecoverable: Vec<(PathBuf, String)>,
    /// The desktop took the global shortcut; otherwise the window handles
    /// it while focused.
    shortcut_registered: AtomicBool,
}

struct Active {
    recorder: Recorder,
    /// Ends the status thread.
    done: Arc<AtomicBool>,
}

/// A recording that began, as the window shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub path: PathBuf,
    pub name: String,
    /// The input device's name.
    pub device: String,
    /// The live session's job: `None` when the engine has no live mode.
    pub live_job: Option<JobId>,
}

/// A recording that ended: the window queues `path` for the final pass.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stopped {
    pub path: PathBuf,
    pub name: String,
    pub duration_s: f64,
    pub ended: Ended,
    /// Input samples lost because the disk or CPU fell behind.
    pub dropped_samples: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveTurnView {
    live_job: JobId,
    #[serde(flatten)]
    turn: diarist::pipeline::live::LiveTurn,
}

impl Recordings {
    /// Recordings under `dir` (none can be made without one), repairing
    /// what a crash left unfinished there.
    pub fn new(dir: Option<PathBuf>, input: InputFactory) -> Self {
        let (recovered, unrecoverable) = match dir.as_deref().map(record::recover) {
            Some(Ok(report)) => (report.recovered, report.failed),
            Some(Err(e)) => {
                eprintln!("diarist-app: cannot check for unfinished recordings: {e}");
                (Vec::new(), Vec::new())
            }
            None => (Vec::new(), Vec::new()),
        };
        Self {
            dir,
            input,
            active: Mutex::new(None),
            recovered,
            unrecoverable,
            shortcut_registered: AtomicBool::new(false),
        }
    }

    pub fn set_shortcut_registered(&self, registered: bool) {
        self.shortcut_registered
            .store(registered, Ordering::Relaxed);
    }

    pub fn shortcut_registered(&self) -> bool {
        self.shortcut_registered.load(Ordering::Relaxed)
    }

    /// The system's microphones, as cpal finds them.
    pub fn microphone_input() -> InputFactory {
        Box::new(record::microphone)
    }

    pub fn is_recording(&self) -> bool {
        lock(&self.active).is_some()
    }

    pub fn recovered(&self) -> &[Recovered] {
        &self.recovered
    }

    pub fn unrecoverable(&self) -> &[(PathBuf, String)] {
        &self.unrecoverable
    }

    pub fn status(&self) -> Option<RecorderStatus> {
        lock(&self.active).as_ref().map(|a| a.recorder.status())
    }
}

/// Starts recording when idle, stops when recording; errors are shown on
/// the window (the tray and the shortcut have nowhere else to report).
pub fn toggle<R: Runtime>(app: &AppHandle<R>) {
    let recording = app.state::<Shell>().recordings.is_recording();
    let outcome = if recording {
        stop(app).map(|_| ())
    } else {
        start(app).map(|_| ())
    };
    if let Err(e) = outcome {
        eprintln!("diarist-app: recording: {e}");
        shell::show_window(app);
        let _ = app.emit_to(MAIN_WINDOW, shell::events::ERROR, &e);
    }
}

/// Starts a recording: a new WAV in the recordings folder, fed to a live
/// session, with status events every 100 ms until it stops.
pub fn start<R: Runtime>(app: &AppHandle<R>) -> Result<Started, CommandError> {
    let shell = app.state::<Shell>();
    let recordings = &shell.recordings;
    let mut active = lock(&recordings.active);
    if active.is_some() {
        return Err(CommandError::new("busy", "a recording is already running"));
    }
    let dir = recordings.dir.as_deref().ok_or_else(|| {
        CommandError::new(
            "no-folder",
            "this system gave the app no data folder to record into",
        )
    })?;
    std::fs::create_dir_all(dir).map_err(|e| {
        CommandError::new(
            "io",
            format!("cannot create the recordings folder {}: {e}", dir.display()),
        )
    })?;
    let path = record::new_recording_path(dir);

    // The live labels are a bonus: without them the recording still runs.
    let live = match shell.engine.start_live(LiveSpec::new(&path)) {
        Ok(session) => Some(session),
        Err(e) => {
            eprintln!("diarist-app: no live labels: {e}");
            None
        }
    };
    let live_job = live.as_ref().map(|s| s.job());
    if let Some(job) = live_job {
        shell.jobs.expect_live(job, path.clone());
    }
    let on_audio: Option<record::AudioSink> = live.map(|session| {
        Box::new(move |start: u64, samples: &[f32]| {
            // When the engine is behind, the live labels skip this chunk;
            // the recording never does.
            session.try_push(start, samples.to_vec());
        }) as record::AudioSink
    });
    let device = shell.settings.get().input_device;
    let recorder = Recorder::start(RecorderConfig {
        path: path.clone(),
        input: (recordings.input)(device),
        max_duration_s: None,
        on_audio,
    })
    .inspect_err(|_| {
        if let Some(job) = live_job {
            shell.jobs.forget_live(job);
        }
    })?;

    // The file is the user's from now on: the queue and the player take it.
    shell.grants.grant(&path);
    if let Err(e) = app.asset_protocol_scope().allow_file(&path) {
        eprintln!(
            "diarist-app: cannot allow playback of {}: {e}",
            path.display()
        );
    }
    let started = Started {
        name: shell::display_name(&path),
        device: recorder.device().to_string(),
        path,
        live_job,
    };
    let done = Arc::new(AtomicBool::new(false));
    *active = Some(Active {
        recorder,
        done: Arc::clone(&done),
    });
    drop(active);

    spawn_status_thread(app.clone(), done)?;
    tray::show_recording(app, true);
    let _ = app.emit_to(MAIN_WINDOW, events::STARTED, &started);
    Ok(started)
}

/// Stops the recording and finishes its file; `None` when none was running.
pub fn stop<R: Runtime>(app: &AppHandle<R>) -> Result<Option<Stopped>, CommandError> {
    let shell = app.state::<Shell>();
    let Some(active) = lock(&shell.recordings.active).take() else {
        return Ok(None);
    };
    active.done.store(true, Ordering::Release);
    tray::show_recording(app, false);
    // Finishing closes the live feed: the engine then ends the session.
    let summary = active.recorder.stop()?;
    let stopped = Stopped {
        name: shell::display_name(&summary.path),
        path: summary.path,
        duration_s: summary.duration_s,
        ended: summary.ended,
        dropped_samples: summary.dropped_samples,
    };
    let _ = app.emit_to(MAIN_WINDOW, events::STOPPED, &stopped);
    Ok(Some(stopped))
}

/// Sends the recording's status to the window until it stops, and stops it
/// when it ended by itself (device unplugged, disk full).
fn spawn_status_thread<R: Runtime>(
    app: AppHandle<R>,
    done: Arc<AtomicBool>,
) -> Result<(), CommandError> {
    std::thread::Builder::new()
        .name("diarist-app-recording".into())
        .spawn(move || {
            while !done.load(Ordering::Acquire) {
                let Some(status) = app.state::<Shell>().recordings.status() else {
                    break;
                };
                let _ = app.emit_to(MAIN_WINDOW, events::STATUS, &status);
                if status.finished {
                    // No caller to return a failure to: the window shows it.
                    if let Err(e) = stop(&app) {
                        eprintln!("diarist-app: recording: {e}");
                        let _ = app.emit_to(MAIN_WINDOW, shell::events::ERROR, &e);
                    }
                    break;
                }
                std::thread::sleep(STATUS_EVERY);
            }
        })
        .map(|_| ())
        .map_err(|e| CommandError::new("shell", format!("cannot start a thread: {e}")))
}

/// An engine event of a live session: turns go to the window, the end keeps
/// the live result for the final pass. False when it is no live event.
pub fn on_live_event<R: Runtime>(app: &AppHandle<R>, event: &Event) -> bool {
    let shell = app.state::<Shell>();
    match event {
        Event::LiveTurn { job, turn } => {
            let view = LiveTurnView {
                live_job: *job,
                turn: turn.clone(),
            };
            let _ = app.emit_to(MAIN_WINDOW, events::LIVE_TURN, &view);
            true
        }
        Event::Done { job, result, .. } => shell.jobs.live_done(*job, result),
        _ => false,
    }
}

/// The recordings folder for an app whose data lives in `data_dir`.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join(FOLDER)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
