//! The commands the window calls (snake_case verbs). Each one is thin: it
//! checks what the page sent, then asks the engine, the job registry or the
//! settings. Files reach these commands only after `shell::accept_inputs`
//! granted them.

use std::path::{Path, PathBuf};

use diarist::audio::capture::{InputDevice, list_input_devices};
use diarist::export::{self, Format};
use diarist::record::Recovered;
use diarist::runtime::{Event, JobId, JobSpec};
use diarist::{Diarization, DiarizeOptions, SpeakerCount};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_dialog::DialogExt;

use crate::error::CommandError;
use crate::grants::AUDIO_EXTENSIONS;
use crate::jobs::Edited;
use crate::recording::{self, Started, Stopped};
use crate::settings::{self, Settings};
use crate::shell::{self, BackendView, InputsAdded, Shell};
use crate::{e2e, locate};

/// One export format as the window's menu lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FormatView {
    pub name: &'static str,
    pub extension: &'static str,
    pub label: &'static str,
}

fn format_label(f: Format) -> &'static str {
    match f {
        Format::Rttm => "RTTM",
        Format::Json => "JSON",
        Format::Csv => "CSV",
        Format::Srt => "SubRip (SRT)",
        Format::Vtt => "WebVTT",
        Format::Audacity => "Audacity labels",
    }
}

/// What the window needs at start.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppState {
    pub settings: Settings,
    pub backend: BackendView,
    pub formats: Vec<FormatView>,
    pub sample_available: bool,
    /// A recording is running (the page was reloaded during it).
    pub recording: bool,
    /// Recordings a crash left unfinished, repaired at start: the window
    /// offers to diarize them.
    pub recovered: Vec<Recovered>,
    /// ...and those that could not be repaired, with the reason.
    pub unrecoverable: Vec<(PathBuf, String)>,
    /// The shortcut that starts and stops a recording...
    pub record_shortcut: &'static str,
    /// ...taken system-wide; when not, the window handles it while focused.
    pub record_shortcut_global: bool,
    /// The end-to-end test drives this instance (debug builds only).
    pub e2e: bool,
}

#[tauri::command]
pub fn app_state(shell: State<'_, Shell>) -> AppState {
    AppState {
        settings: shell.settings.get(),
        backend: shell.backend_view(),
        formats: Format::ALL
            .into_iter()
            .map(|f| FormatView {
                name: f.name(),
                extension: f.extension(),
                label: format_label(f),
            })
            .collect(),
        sample_available: locate::sample().is_some(),
        recording: shell.recordings.is_recording(),
        recovered: shell.recordings.recovered().to_vec(),
        unrecoverable: shell.recordings.unrecoverable().to_vec(),
        record_shortcut: recording::SHORTCUT,
        record_shortcut_global: shell.recordings.shortcut_registered(),
        e2e: shell.e2e_dir.is_some(),
    }
}

/// Shows the Open dialog (files, or folders when `folders`) and takes in
/// what the user picked, as a drop would.
#[tauri::command]
pub async fn open_inputs<R: Runtime>(
    app: AppHandle<R>,
    folders: bool,
) -> Result<Option<InputsAdded>, CommandError> {
    let dialog = app.dialog().file().set_title(if folders {
        "Choose folders of recordings"
    } else {
        "Choose recordings"
    });
    let picked = tauri::async_runtime::spawn_blocking(move || {
        if folders {
            dialog.blocking_pick_folders()
        } else {
            dialog
                .add_filter("Audio and video", AUDIO_EXTENSIONS)
                .add_filter("All files", &["*"])
                .blocking_pick_files()
        }
    })
    .await
    .map_err(|e| CommandError::new("shell", e.to_string()))?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let paths: Vec<PathBuf> = picked
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .collect();
    Ok(Some(shell::accept_inputs(&app, &paths, "dialog")))
}

/// Takes in the bundled sample recording, as a drop of that file would.
#[tauri::command]
pub fn try_sample<R: Runtime>(app: AppHandle<R>) -> Result<InputsAdded, CommandError> {
    let sample = locate::sample().ok_or_else(|| {
        CommandError::new(
            "no-sample",
            format!(
                "the bundled {} was not found next to the app",
                locate::SAMPLE
            ),
        )
    })?;
    Ok(shell::accept_inputs(&app, &[sample], "sample"))
}

/// Takes in the recordings repaired at start that still exist, as a drop
/// of them would: the window queues them.
#[tauri::command]
pub fn open_recovered<R: Runtime>(app: AppHandle<R>, shell: State<'_, Shell>) -> InputsAdded {
    let paths: Vec<PathBuf> = shell
        .recordings
        .recovered()
        .iter()
        .map(|r| r.path.clone())
        .filter(|p| p.is_file())
        .collect();
    shell::accept_inputs(&app, &paths, "recovered")
}

/// Starts recording from the chosen microphone; status and live turns
/// follow as `recording-status` and `live-turn` events.
#[tauri::command]
pub fn start_recording<R: Runtime>(app: AppHandle<R>) -> Result<Started, CommandError> {
    recording::start(&app)
}

/// Stops the recording and finishes its file (`None` when none was
/// running); the window then queues it for the final pass.
#[tauri::command]
pub fn stop_recording<R: Runtime>(app: AppHandle<R>) -> Result<Option<Stopped>, CommandError> {
    recording::stop(&app)
}

/// Names a live speaker during a recording; the name follows that voice
/// into the final result.
#[tauri::command]
pub fn rename_live_speaker(
    shell: State<'_, Shell>,
    live_job: u64,
    label: String,
    name: String,
) -> Result<(), CommandError> {
    shell.jobs.rename_live(JobId(live_job), &label, &name)
}

/// The microphones the system offers, the default first.
#[tauri::command]
pub async fn list_microphones() -> Result<Vec<InputDevice>, CommandError> {
    let mut devices = tauri::async_runtime::spawn_blocking(list_input_devices)
        .await
        .map_err(|e| CommandError::new("shell", e.to_string()))??;
    devices.sort_by_key(|d| !d.is_default);
    Ok(devices)
}

/// Remembers the microphone to record from (`None`: the system default).
#[tauri::command]
pub fn set_microphone(
    shell: State<'_, Shell>,
    id: Option<String>,
) -> Result<Settings, CommandError> {
    shell.settings.update(|s| s.input_device = id)
}

/// What the window shows on a new queue row before the first event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedJob {
    pub job: JobId,
    pub name: String,
    /// From the file's header; `None` when it does not say or the file is
    /// not audio (the engine then reports why on the row).
    pub duration_s: Option<f64>,
}

/// Queues one granted file; its events stream over `on_event`.
#[tauri::command]
pub async fn queue_file(
    shell: State<'_, Shell>,
    path: PathBuf,
    speakers: SpeakerCount,
    on_event: Channel<Event>,
) -> Result<QueuedJob, CommandError> {
    let path = shell.grants.check(&path)?;
    if !settings::count_is_valid(speakers) {
        return Err(CommandError::new(
            "invalid-option",
            "the speaker count must be at least 1, with min no larger than max",
        ));
    }
    let duration_s = diarist::audio::probe(&path).ok().and_then(|i| i.duration_s);
    let spec = JobSpec {
        path: path.clone(),
        options: DiarizeOptions {
            speakers,
            ..DiarizeOptions::default()
        },
    };
    let job = shell.jobs.submit(&shell.engine, spec, on_event)?;
    Ok(QueuedJob {
        job,
        name: shell::display_name(&path),
        duration_s,
    })
}

#[tauri::command]
pub fn cancel_job(shell: State<'_, Shell>, job: u64) -> bool {
    shell.engine.cancel(JobId(job))
}

/// A finished result with the user's names, as the window shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultView {
    pub job: JobId,
    pub path: PathBuf,
    pub result: Diarization,
    pub names: diarist::export::SpeakerNames,
}

impl ResultView {
    fn new(job: JobId, edited: Edited) -> Self {
        Self {
            job,
            path: edited.path,
            result: edited.result,
            names: edited.names,
        }
    }
}

#[tauri::command]
pub fn get_result(shell: State<'_, Shell>, job: u64) -> Result<ResultView, CommandError> {
    let edited = shell.jobs.edited(JobId(job))?;
    Ok(ResultView::new(JobId(job), edited))
}

#[tauri::command]
pub fn rename_speaker(
    shell: State<'_, Shell>,
    job: u64,
    label: String,
    name: String,
) -> Result<(), CommandError> {
    shell.jobs.rename(JobId(job), &label, &name)
}

#[tauri::command]
pub fn merge_speakers(
    shell: State<'_, Shell>,
    job: u64,
    from: String,
    into: String,
) -> Result<ResultView, CommandError> {
    let edited = shell.jobs.merge(JobId(job), &from, &into)?;
    Ok(ResultView::new(JobId(job), edited))
}

/// Asks where to save (a save dialog opening in the last export folder),
/// writes the result there with the user's names, and remembers the folder
/// and format. `None` when the user cancelled.
#[tauri::command]
pub async fn export_result<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    job: u64,
    format: String,
) -> Result<Option<PathBuf>, CommandError> {
    let format: Format = format.parse()?;
    let edited = shell.jobs.edited(JobId(job))?;
    let file_name = format!("{}.{}", export_stem(&edited.path), format.extension());
    let folder = shell
        .settings
        .get()
        .last_export_dir
        .filter(|d| d.is_dir())
        .or_else(|| edited.path.parent().map(Path::to_path_buf));

    let target = match e2e::save_path(shell.e2e_dir.as_deref(), &file_name) {
        Some(path) => Some(path),
        None => {
            let mut dialog = app
                .dialog()
                .file()
                .set_title("Export")
                .set_file_name(&file_name)
                .add_filter(format_label(format), &[format.extension()]);
            if let Some(folder) = &folder {
                dialog = dialog.set_directory(folder);
            }
            tauri::async_runtime::spawn_blocking(move || dialog.blocking_save_file())
                .await
                .map_err(|e| CommandError::new("shell", e.to_string()))?
                .and_then(|p| p.into_path().ok())
        }
    };
    let Some(target) = target else {
        return Ok(None);
    };
    export::write(&edited.result, format, &target, &edited.names)?;
    shell.settings.update(|s| {
        s.default_export_format = format.name().into();
        s.last_export_dir = target.parent().map(Path::to_path_buf);
    })?;
    Ok(Some(target))
}

/// The exported file's stem: the recording's, so `talk.m4a` → `talk.rttm`.
fn export_stem(audio: &Path) -> String {
    audio
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "diarization".into())
}

#[tauri::command]
pub fn set_safe_mode<R: Runtime>(app: AppHandle<R>, on: bool) -> Result<(), CommandError> {
    shell::set_safe_mode(&app, on)
}

/// Remembers the speaker count and export format chosen in the window.
#[tauri::command]
pub fn save_defaults(
    shell: State<'_, Shell>,
    speakers: SpeakerCount,
    format: String,
) -> Result<Settings, CommandError> {
    if !settings::count_is_valid(speakers) {
        return Err(CommandError::new("invalid-option", "invalid speaker count"));
    }
    let format: Format = format.parse()?;
    shell.settings.update(|s| {
        s.default_speakers = speakers;
        s.default_export_format = format.name().into();
    })
}

/// The window reports whether it is visible; stats run only while it is.
#[tauri::command]
pub fn watch_stats<R: Runtime>(app: AppHandle<R>, on: bool) {
    shell::watch_stats(&app, on);
}

/// The end-to-end test's stand-in for a drop (see `e2e`).
#[tauri::command]
pub fn e2e_drop<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    paths: Vec<PathBuf>,
) -> Result<InputsAdded, CommandError> {
    if shell.e2e_dir.is_none() {
        return Err(CommandError::new("forbidden", "not an end-to-end test run"));
    }
    Ok(shell::accept_inputs(&app, &paths, "drop"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use diarist::runtime::{Diarizer, Engine, EngineConfig, FaultInjection, FaultKind};
    use diarist::{StageTimings, Turn};
    use serde_json::{Value, json};
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{
        INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
    };
    use tauri::webview::InvokeRequest;
    use tauri::{App, Listener, Manager, WebviewWindow, WebviewWindowBuilder};

    use super::*;
    use crate::recording::{InputFactory, Recordings};
    use crate::settings::SettingsStore;

    /// A "microphone" that plays a 440 Hz tone in real time, at 48 kHz
    /// stereo like many real ones.
    fn tone() -> InputFactory {
        Box::new(|_device| {
            Box::new(|| {
                let (rate, channels) = (48_000u32, 2usize);
                let (mut producer, consumer) =
                    rtrb::RingBuffer::<f32>::new(rate as usize * channels);
                let health = std::sync::Arc::new(diarist::audio::capture::CaptureHealth::default());
                let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let thread_stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut n = 0usize;
                    while !thread_stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                        let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as usize;
                        while n < due {
                            let v = 0.5
                                * (std::f32::consts::TAU * 440.0 * n as f32 / rate as f32).sin();
                            for _ in 0..channels {
                                let _ = producer.push(v);
                            }
                            n += 1;
                        }
                    }
                });
                /// Stops the tone when the recorder lets go of the input.
                struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);
                impl Drop for StopOnDrop {
                    fn drop(&mut self) {
                        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Ok(diarist::record::OpenedInput {
                    format: diarist::audio::capture::InputFormat {
                        sample_rate: rate,
                        channels,
                    },
                    samples: consumer,
                    health,
                    name: "test tone".into(),
                    keep_alive: Box::new(StopOnDrop(stop)),
                })
            })
        })
    }

    /// Returns two speakers for any file, after reporting progress once.
    struct TwoSpeakers;

    impl Diarizer for TwoSpeakers {
        fn load(_: &Path, _: &candle_core::Device) -> diarist::Result<Self> {
            Ok(Self)
        }
        fn diarize(
            &mut self,
            job: &JobSpec,
            _batch: usize,
            progress: &mut dyn diarist::Progress,
        ) -> diarist::Result<Diarization> {
            if progress
                .update(diarist::Stage::Segmentation, 1, 1)
                .is_break()
            {
                return Err(diarist::Error::Cancelled);
            }
            let turn = |start_s, end_s, speaker: &str| Turn {
                start_s,
                end_s,
                speaker: speaker.into(),
            };
            Ok(Diarization::new(
                job.path.file_stem().unwrap().to_string_lossy(),
                10.0,
                vec![
                    turn(0.0, 4.0, "SPEAKER_00"),
                    turn(3.0, 7.0, "SPEAKER_01"),
                    turn(7.5, 9.0, "SPEAKER_00"),
                ],
                "cpu",
                StageTimings::default(),
            ))
        }
    }

    struct TestApp {
        _app: App<MockRuntime>,
        window: WebviewWindow<MockRuntime>,
        dir: tempfile::TempDir,
    }

    fn app() -> TestApp {
        app_with(|_| {})
    }

    fn app_with(configure: impl FnOnce(&mut EngineConfig)) -> TestApp {
        app_in(tempfile::tempdir().unwrap(), configure)
    }

    /// An app whose settings, recordings and test saves live in `dir`.
    fn app_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut EngineConfig)) -> TestApp {
        let app = crate::with_commands(mock_builder())
            .build(mock_context(noop_assets()))
            .unwrap();
        let mut config = EngineConfig::new(dir.path());
        configure(&mut config);
        let engine = Engine::start::<TwoSpeakers>(config).unwrap();
        let settings = SettingsStore::load(Some(dir.path().join("settings.json")));
        let recordings = Recordings::new(Some(dir.path().join("recordings")), tone());
        let shell = Shell::new(engine, settings, recordings, Some(dir.path().to_path_buf()));
        crate::manage_shell(app.handle(), shell).unwrap();
        let window = WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        TestApp {
            _app: app,
            window,
            dir,
        }
    }

    fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    fn wait_for_result(window: &WebviewWindow<MockRuntime>, job: u64) -> Value {
        let started = Instant::now();
        loop {
            if let Ok(view) = invoke(window, "get_result", json!({ "job": job })) {
                return view;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "job {job} never finished"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn only_files_the_user_gave_can_be_queued() {
        let t = app();
        let refused = invoke(
            &t.window,
            "queue_file",
            json!({ "path": "/etc/passwd", "speakers": { "mode": "auto" }, "onEvent": "__CHANNEL__:1" }),
        )
        .unwrap_err();
        assert_eq!(refused["code"], "not-granted");
    }

    #[test]
    fn a_dropped_file_is_diarized_renamed_merged_and_exported() {
        let t = app();
        let audio = t.dir.path().join("talk.wav");
        std::fs::write(&audio, b"RIFF").unwrap();
        let added =
            shell::accept_inputs(t.window.app_handle(), std::slice::from_ref(&audio), "drop");
        assert_eq!(added.files.len(), 1);
        assert!(t.window.asset_protocol_scope().is_allowed(&audio));

        let queued = invoke(
            &t.window,
            "queue_file",
            json!({ "path": audio, "speakers": { "mode": "exact", "n": 2 }, "onEvent": "__CHANNEL__:7" }),
        )
        .unwrap();
        let job = queued["job"].as_u64().unwrap();
        assert_eq!(queued["name"], "talk.wav");
        let view = wait_for_result(&t.window, job);
        assert_eq!(view["result"]["speakers"].as_array().unwrap().len(), 2);

        invoke(
            &t.window,
            "rename_speaker",
            json!({ "job": job, "label": "SPEAKER_01", "name": "Bea" }),
        )
        .unwrap();
        let unknown = invoke(
            &t.window,
            "rename_speaker",
            json!({ "job": job, "label": "SPEAKER_07", "name": "X" }),
        )
        .unwrap_err();
        assert_eq!(unknown["code"], "invalid-option");

        // The test run's save "dialog" answers <dir>/talk.<ext>.
        let written = invoke(
            &t.window,
            "export_result",
            json!({ "job": job, "format": "srt" }),
        )
        .unwrap();
        assert_eq!(written, json!(t.dir.path().join("talk.srt")));
        let srt = std::fs::read_to_string(t.dir.path().join("talk.srt")).unwrap();
        assert!(srt.contains("Bea"), "{srt}");
        let settings = invoke(&t.window, "app_state", json!({})).unwrap()["settings"].clone();
        assert_eq!(settings["defaultExportFormat"], "srt");
        assert_eq!(settings["lastExportDir"], json!(t.dir.path()));

        let merged = invoke(
            &t.window,
            "merge_speakers",
            json!({ "job": job, "from": "SPEAKER_01", "into": "SPEAKER_00" }),
        )
        .unwrap();
        assert_eq!(merged["result"]["speakers"].as_array().unwrap().len(), 1);
        assert_eq!(merged["result"]["turns"].as_array().unwrap().len(), 2);
        assert_eq!(merged["names"]["SPEAKER_00"], "Bea");
    }

    #[test]
    fn defaults_and_safe_mode_persist() {
        let t = app();
        let bad = invoke(
            &t.window,
            "save_defaults",
            json!({ "speakers": { "mode": "range", "min": 4, "max": 2 }, "format": "csv" }),
        )
        .unwrap_err();
        assert_eq!(bad["code"], "invalid-option");
        invoke(
            &t.window,
            "save_defaults",
            json!({ "speakers": { "mode": "exact", "n": 3 }, "format": "webvtt" }),
        )
        .unwrap();
        invoke(&t.window, "set_safe_mode", json!({ "on": true })).unwrap();

        let saved = SettingsStore::load(Some(t.dir.path().join("settings.json"))).get();
        assert_eq!(saved.default_speakers, SpeakerCount::Exact { n: 3 });
        assert_eq!(saved.default_export_format, "vtt");
        assert!(saved.safe_mode);
        let shell = t.window.state::<Shell>();
        let started = Instant::now();
        while !shell.engine.status().safe_mode {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "safe mode never applied"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_gpu_failure_falls_back_tells_the_window_and_persists_safe_mode() {
        let t = app_with(|config| {
            config.simulate_gpu = true;
            config.fault = Some(FaultInjection {
                on_batch: 1,
                kind: FaultKind::Error,
                times: 1,
            });
        });
        let shell = t.window.state::<Shell>();
        assert_eq!(shell.backend_view().label, "GPU (simulated)");
        let (tx, rx) = std::sync::mpsc::channel();
        for name in [shell::events::FALLBACK, shell::events::SAFE_MODE_CHANGED] {
            let tx = tx.clone();
            t.window.listen_any(name, move |e| {
                let _ = tx.send((name, e.payload().to_string()));
            });
        }

        let audio = t.dir.path().join("talk.wav");
        std::fs::write(&audio, b"RIFF").unwrap();
        shell::accept_inputs(t.window.app_handle(), std::slice::from_ref(&audio), "drop");
        let queued = invoke(
            &t.window,
            "queue_file",
            json!({ "path": audio, "speakers": { "mode": "auto" }, "onEvent": "__CHANNEL__:3" }),
        )
        .unwrap();
        // The job still finishes, on the CPU.
        let view = wait_for_result(&t.window, queued["job"].as_u64().unwrap());
        assert_eq!(view["result"]["speakers"].as_array().unwrap().len(), 2);

        let mut seen = Vec::new();
        while let Ok(event) = rx.recv_timeout(Duration::from_secs(5)) {
            seen.push(event);
            if seen.len() == 2 {
                break;
            }
        }
        let fallback = seen
            .iter()
            .find(|(n, _)| *n == shell::events::FALLBACK)
            .unwrap();
        assert!(fallback.1.contains("injected fault"), "{fallback:?}");
        assert!(seen.contains(&(shell::events::SAFE_MODE_CHANGED, "true".into())));
        assert!(shell.engine.status().safe_mode);
        let saved = SettingsStore::load(Some(t.dir.path().join("settings.json"))).get();
        assert!(saved.safe_mode, "the switch stays flipped after a restart");
    }

    #[test]
    fn stats_are_sampled_only_while_the_window_watches() {
        let t = app();
        let shell = t.window.state::<Shell>();
        let sampling = |want: bool| {
            let started = Instant::now();
            while shell.engine.status().stats_sampler_running != want {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "sampler never {want}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        invoke(&t.window, "watch_stats", json!({ "on": true })).unwrap();
        assert!(shell.stats.is_on());
        sampling(true);
        invoke(&t.window, "watch_stats", json!({ "on": false })).unwrap();
        assert!(!shell.stats.is_on());
        sampling(false);
    }

    #[test]
    fn the_window_learns_formats_and_the_sample() {
        let t = app();
        let state = invoke(&t.window, "app_state", json!({})).unwrap();
        let formats: Vec<&str> = state["formats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(formats, ["rttm", "json", "csv", "srt", "vtt", "audacity"]);
        assert_eq!(state["sampleAvailable"], true);
        assert_eq!(state["backend"]["label"], "CPU");
        assert_eq!(state["e2e"], true);
    }

    #[test]
    fn a_recording_streams_its_status_and_ends_as_a_granted_file() {
        let t = app();
        let (tx, rx) = std::sync::mpsc::channel();
        for name in [
            recording::events::STARTED,
            recording::events::STATUS,
            recording::events::STOPPED,
        ] {
            let tx = tx.clone();
            t.window.listen_any(name, move |e| {
                let _ = tx.send((name, e.payload().to_string()));
            });
        }
        let started = invoke(&t.window, "start_recording", json!({})).unwrap();
        assert_eq!(started["device"], "test tone");
        let path = PathBuf::from(started["path"].as_str().unwrap());
        assert!(
            path.starts_with(t.dir.path().join("recordings")),
            "{path:?}"
        );
        let again = invoke(&t.window, "start_recording", json!({})).unwrap_err();
        assert_eq!(again["code"], "busy");
        assert_eq!(
            invoke(&t.window, "app_state", json!({})).unwrap()["recording"],
            true
        );

        // Status comes about ten times a second, with the tone's level.
        let mut statuses = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while statuses.len() < 8 && Instant::now() < deadline {
            if let Ok((recording::events::STATUS, payload)) =
                rx.recv_timeout(Duration::from_secs(1))
            {
                statuses.push(serde_json::from_str::<Value>(&payload).unwrap());
            }
        }
        assert!(statuses.len() >= 8, "{statuses:?}");
        let last = statuses.last().unwrap();
        assert!(last["elapsedS"].as_f64().unwrap() > 0.3, "{last}");
        assert!(last["level"].as_f64().unwrap() > 0.4, "{last}");

        let stopped = invoke(&t.window, "stop_recording", json!({})).unwrap();
        assert_eq!(stopped["ended"]["reason"], "stopped");
        assert!(stopped["durationS"].as_f64().unwrap() > 0.5, "{stopped}");
        let wav = hound::WavReader::open(&path).unwrap();
        assert_eq!(wav.spec().sample_rate, 16_000);
        assert!(wav.len() >= 8_000);
        assert!(!diarist::record::marker_path(&path).exists());
        assert_eq!(
            invoke(&t.window, "stop_recording", json!({})).unwrap(),
            Value::Null
        );
        let stopped_event = rx
            .iter()
            .find(|(name, _)| *name == recording::events::STOPPED)
            .unwrap();
        assert!(
            stopped_event.1.contains(r#""reason":"stopped""#),
            "{}",
            stopped_event.1
        );

        // The recording is the user's: it queues like a dropped file.
        let queued = invoke(
            &t.window,
            "queue_file",
            json!({ "path": path, "speakers": { "mode": "auto" }, "onEvent": "__CHANNEL__:5" }),
        )
        .unwrap();
        let view = wait_for_result(&t.window, queued["job"].as_u64().unwrap());
        assert_eq!(view["result"]["speakers"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn unfinished_recordings_are_repaired_and_offered() {
        let dir = tempfile::tempdir().unwrap();
        let recordings = dir.path().join("recordings");
        std::fs::create_dir_all(&recordings).unwrap();
        // A crash left a WAV whose header still says "empty" and its marker.
        let wav = recordings.join("2026-11-27_10-00-00.wav");
        let mut bytes = silent_wav(16_000);
        bytes[4..8].copy_from_slice(&36u32.to_le_bytes());
        bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
        std::fs::write(&wav, &bytes).unwrap();
        std::fs::write(diarist::record::marker_path(&wav), b"").unwrap();

        let t = app_in(dir, |_| {});
        assert!(!diarist::record::marker_path(&wav).exists());
        let state = invoke(&t.window, "app_state", json!({})).unwrap();
        let recovered = state["recovered"].as_array().unwrap();
        assert_eq!(recovered.len(), 1, "{state}");
        assert_eq!(recovered[0]["path"], json!(wav));
        assert!((recovered[0]["durationS"].as_f64().unwrap() - 1.0).abs() < 1e-6);

        // Offered = taken in like a drop: granted, playable, announced.
        let offered = invoke(&t.window, "open_recovered", json!({})).unwrap();
        assert_eq!(offered["origin"], "recovered");
        assert_eq!(offered["files"][0]["path"], json!(wav));
        assert!(t.window.asset_protocol_scope().is_allowed(&wav));
        invoke(
            &t.window,
            "queue_file",
            json!({ "path": wav, "speakers": { "mode": "auto" }, "onEvent": "__CHANNEL__:9" }),
        )
        .unwrap();
    }

    /// A valid 16 kHz mono WAV of `n` silent samples.
    fn silent_wav(n: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(b"RIFF");
        bytes.extend((36 + 2 * n).to_le_bytes());
        bytes.extend(b"WAVEfmt ");
        bytes.extend(16u32.to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(16_000u32.to_le_bytes());
        bytes.extend(32_000u32.to_le_bytes());
        bytes.extend(2u16.to_le_bytes());
        bytes.extend(16u16.to_le_bytes());
        bytes.extend(b"data");
        bytes.extend((2 * n).to_le_bytes());
        bytes.extend(std::iter::repeat_n(0u8, 2 * n as usize));
        bytes
    }

    #[test]
    fn the_chosen_microphone_persists() {
        let t = app();
        let saved = invoke(&t.window, "set_microphone", json!({ "id": "alsa:pulse" })).unwrap();
        assert_eq!(saved["inputDevice"], "alsa:pulse");
        let again = SettingsStore::load(Some(t.dir.path().join("settings.json"))).get();
        assert_eq!(again.input_device.as_deref(), Some("alsa:pulse"));
        invoke(&t.window, "set_microphone", json!({ "id": null })).unwrap();
        let cleared = SettingsStore::load(Some(t.dir.path().join("settings.json"))).get();
        assert_eq!(cleared.input_device, None);
    }
}
