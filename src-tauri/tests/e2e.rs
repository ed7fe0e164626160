//! End-to-end test of the real app in a real window: tauri-driver starts the
//! debug binary under WebKitWebDriver, and this test drives it like a user.
//! Needs a display and `tauri-driver` on PATH, so it is ignored by a plain
//! `cargo test`; `scripts/e2e.sh` runs it under `xvfb-run`.
//!
//! Native surfaces are out of WebDriver's reach, so the app's test hooks
//! (src/e2e.rs, debug builds started with DIARIST_E2E_DIR only) stand in for
//! them: `e2e_drop` takes paths in exactly as a drop does, and save dialogs
//! answer "<DIARIST_E2E_DIR>/<proposed name>".

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Diarizing the 30 s sample on a CPU in a debug build (dependencies are
/// optimised) takes seconds; the margin is for loaded CI machines.
const JOB_TIMEOUT: Duration = Duration::from_secs(240);
const UI_TIMEOUT: Duration = Duration::from_secs(20);

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Polls a JavaScript expression until it is neither null nor false.
async fn until(client: &Client, what: &str, timeout: Duration, expr: &str) -> Result<Value> {
    let started = Instant::now();
    loop {
        let value = client
            .execute(&format!("return ({expr});"), vec![])
            .await
            .with_context(|| format!("evaluating {expr}"))?;
        if !(value.is_null() || value == Value::Bool(false)) {
            return Ok(value);
        }
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what} ({expr})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Calls a promise-returning hook and returns what it resolved to.
async fn call(client: &Client, expr: &str, args: Vec<Value>) -> Result<Value> {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         Promise.resolve().then(() => {expr})
           .then(v => done({{ ok: v ?? null }}), e => done({{ err: String(e && e.message || e) }}));"
    );
    let reply = client.execute_async(&script, args).await?;
    match reply.get("err") {
        Some(err) => bail!("{expr} failed: {err}"),
        None => Ok(reply.get("ok").cloned().unwrap_or(Value::Null)),
    }
}

/// Waits until the queue row `row` (a JavaScript expression) is done and
/// `also` holds, and returns the engine's result view for its job; a failed
/// row fails the test with the row's text.
async fn finished_job(client: &Client, what: &str, row: &str, also: &str) -> Result<Value> {
    let expr = format!(
        "(() => {{ const r = {row};
                  if (r && r.dataset.state === 'failed') return 'failed: ' + r.innerText;
                  return r && r.dataset.state === 'done' && ({also}) ? r.dataset.job : null; }})()"
    );
    let job = until(client, what, JOB_TIMEOUT, &expr).await?;
    let job: u64 = match job.as_str() {
        Some(s) if s.starts_with("failed") => bail!("{what}: {s}"),
        Some(s) => s.parse()?,
        None => bail!("unexpected job id {job}"),
    };
    call(
        client,
        "window.diaristE2E.result(arguments[0])",
        vec![json!(job)],
    )
    .await
}

async fn text(client: &Client, css: &str) -> Result<String> {
    Ok(client.find(Locator::Css(css)).await?.text().await?)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a display, tauri-driver and WebKitWebDriver: run scripts/e2e.sh"]
async fn the_app_diarizes_renames_exports_and_survives_bad_input() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let out = scratch.path().join("out");
    let config = scratch.path().join("config");
    // Recordings go to the app's data folder: this run's, not the user's.
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&out)?;
    std::fs::create_dir_all(&config)?;
    std::fs::create_dir_all(&data)?;

    let port = free_port()?;
    let native_port = free_port()?;
    // The app inherits tauri-driver's environment: fresh config and data
    // dirs, so the user's settings and recordings are neither read nor
    // changed, and the test hooks.
    let _driver = Driver(
        Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("DIARIST_E2E_DIR", &out)
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_DATA_HOME", &data)
            .spawn()
            .context("starting tauri-driver (cargo install tauri-driver --version ^2 --locked)")?,
    );
    // tauri-driver listens at once but forwards to WebKitWebDriver, which
    // starts a moment later on the native port.
    let started = Instant::now();
    for p in [port, native_port] {
        while TcpStream::connect(("127.0.0.1", p)).is_err() {
            ensure!(
                started.elapsed() < UI_TIMEOUT,
                "nothing listens on port {p}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert(
        "tauri:options".into(),
        json!({ "application": env!("CARGO_BIN_EXE_diarist-app") }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut builder = ClientBuilder::new(connector);
    builder.capabilities(caps);
    let client = builder
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("opening a WebDriver session on the app")?;

    let outcome = drive(&client, scratch.path(), &out).await;
    if outcome.is_err() {
        // Leave a picture of the failure next to the test's output.
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(repo_root().join("target").join("e2e-failure.png"), png);
        }
    }
    let _ = client.close().await;
    outcome
}

async fn drive(client: &Client, scratch: &Path, out: &Path) -> Result<()> {
    until(
        client,
        "the window to start",
        UI_TIMEOUT,
        "document.body.dataset.ready === 'true'",
    )
    .await?;
    let backend = text(client, "#st-backend .txt").await?;
    ensure!(
        backend == "CPU",
        "this machine has no GPU, yet the status bar says {backend:?}"
    );

    // 1. The bundled sample, taken in exactly as a drop.
    let sample = repo_root()
        .join("samples")
        .join("sample.wav")
        .canonicalize()?;
    call(
        client,
        "window.diaristE2E.drop(arguments[0])",
        vec![json!([sample])],
    )
    .await?;
    let engine = finished_job(
        client,
        "the sample's result",
        "document.querySelector('.job')",
        "true",
    )
    .await?;

    // 2. The timeline shows what the engine returned: 2 lanes, every turn.
    let speakers = engine["result"]["speakers"]
        .as_array()
        .context("speakers")?;
    ensure!(
        speakers.len() == 2,
        "the engine found {} speakers in the sample",
        speakers.len()
    );
    let lanes = client.find_all(Locator::Css("#tl-lanes .lane")).await?;
    ensure!(lanes.len() == 2, "the timeline has {} lanes", lanes.len());
    let mut want: Vec<(String, f64, f64)> = engine["result"]["turns"]
        .as_array()
        .context("turns")?
        .iter()
        .map(|t| {
            (
                t["speaker"].as_str().unwrap_or_default().to_string(),
                t["start_s"].as_f64().unwrap_or(f64::NAN),
                t["end_s"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let mut shown = Vec::new();
    for bar in client.find_all(Locator::Css("#tl-lanes .turn")).await? {
        let attr = |v: Option<String>| v.unwrap_or_default();
        shown.push((
            attr(bar.attr("data-speaker").await?),
            attr(bar.attr("data-start").await?).parse::<f64>()?,
            attr(bar.attr("data-end").await?).parse::<f64>()?,
        ));
    }
    let order =
        |a: &(String, f64, f64), b: &(String, f64, f64)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
    want.sort_by(order);
    shown.sort_by(order);
    ensure!(!want.is_empty(), "the engine returned no turns");
    // The two JSON paths (job channel, result command) may print a time a
    // last digit apart; a microsecond is far below a pixel.
    let same = shown.len() == want.len()
        && shown
            .iter()
            .zip(&want)
            .all(|(a, b)| a.0 == b.0 && (a.1 - b.1).abs() < 1e-6 && (a.2 - b.2).abs() < 1e-6);
    ensure!(
        same,
        "timeline turns {shown:?} differ from the engine's {want:?}"
    );

    // 3. Rename the first speaker inline.
    let first = speakers[0]["speaker"]
        .as_str()
        .context("label")?
        .to_string();
    let other = speakers[1]["speaker"]
        .as_str()
        .context("label")?
        .to_string();
    client
        .find(Locator::Css(&format!(
            "#speakers-body tr[data-speaker='{first}'] button.name"
        )))
        .await?
        .click()
        .await?;
    let input = client.find(Locator::Css("input.rename")).await?;
    // Backspaces, not `clear()`: WebDriver's clear blurs the field, which
    // commits the edit. Whether the caret is at the end or the text is
    // selected, this empties it the way a user would.
    let erase = Key::Backspace
        .to_string()
        .repeat(input.prop("value").await?.map_or(0, |v| v.len()) + 1);
    input.send_keys(&erase).await?;
    input.send_keys("Alice").await?;
    input.send_keys(&Key::Enter.to_string()).await?;
    until(
        client,
        "the new name on the timeline",
        UI_TIMEOUT,
        &format!(
            "[...document.querySelectorAll('#tl-labels .lane-name')].some(e => e.textContent === 'Alice')
             && document.querySelector(\"#speakers-body tr[data-speaker='{first}'] button.name\")?.textContent === 'Alice'"
        ),
    )
    .await?;

    // 4. Playback: a click on a turn plays from its start and the playhead
    // moves; Space pauses.
    let turn = client
        .find(Locator::Css(&format!(
            "#tl-lanes .turn[data-speaker='{other}']"
        )))
        .await?;
    let start_s: f64 = turn.attr("data-start").await?.unwrap_or_default().parse()?;
    turn.click().await?;
    let playing = until(
        client,
        "playback past the clicked turn's start",
        UI_TIMEOUT,
        &format!(
            "(() => {{ const a = document.getElementById('audio');
                      const note = document.getElementById('playback-note').textContent;
                      if (note) return 'error: ' + note;
                      return !a.paused && a.currentTime > {start_s} + 0.4 && a.currentTime; }})()"
        ),
    )
    .await?;
    if let Some(note) = playing.as_str() {
        bail!("playback failed: {note}");
    }
    let playhead_pct: f64 = client
        .execute(
            "return parseFloat(document.getElementById('tl-playhead').style.left);",
            vec![],
        )
        .await?
        .as_f64()
        .context("playhead position")?;
    let duration_s = engine["result"]["duration_s"]
        .as_f64()
        .context("duration")?;
    ensure!(
        playhead_pct > start_s / duration_s * 100.0,
        "the playhead stayed at {playhead_pct}% while playing from {start_s} s"
    );
    let space = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: ' ' })
        .then(KeyAction::Up { value: ' ' });
    client.perform_actions(space).await?;
    until(
        client,
        "Space to pause",
        UI_TIMEOUT,
        "document.getElementById('audio').paused",
    )
    .await?;
    let paused_at = client
        .execute(
            "return document.getElementById('audio').currentTime;",
            vec![],
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = client
        .execute(
            "const a = document.getElementById('audio'); return a.paused && a.currentTime;",
            vec![],
        )
        .await?;
    ensure!(
        later == paused_at,
        "playback went on after Space: {paused_at} then {later}"
    );

    // The results view, as users see it, for the README.
    let png = client.screenshot().await?;
    ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    let docs = repo_root().join("docs");
    std::fs::create_dir_all(&docs)?;
    std::fs::write(docs.join("screenshot.png"), &png)?;

    // 5. Export RTTM: the file carries the new name.
    client
        .find(Locator::Css("#export-format option[value='rttm']"))
        .await?
        .click()
        .await?;
    client
        .find(Locator::Css("#export-btn"))
        .await?
        .click()
        .await?;
    until(
        client,
        "the export to finish",
        UI_TIMEOUT,
        "document.querySelector('#toast')?.textContent.startsWith('Exported to') || null",
    )
    .await?;
    let rttm = std::fs::read_to_string(out.join("sample.rttm")).context("reading the export")?;
    let names: Vec<&str> = rttm
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .collect();
    ensure!(names.contains(&"Alice"), "the RTTM has no Alice:\n{rttm}");
    ensure!(
        names.contains(&other.as_str()),
        "the RTTM lost {other}:\n{rttm}"
    );
    ensure!(
        !names.contains(&first.as_str()),
        "the RTTM still says {first}:\n{rttm}"
    );

    // 6. Safe mode from the window's switch: the status bar says CPU.
    client
        .find(Locator::Css("label.switch"))
        .await?
        .click()
        .await?;
    until(
        client,
        "the status bar to report safe mode",
        UI_TIMEOUT,
        "document.querySelector('#st-backend .txt').textContent === 'CPU · safe mode'",
    )
    .await?;
    ensure!(
        client
            .find(Locator::Css("#safe-mode"))
            .await?
            .prop("checked")
            .await?
            .as_deref()
            == Some("true"),
        "the switch did not stay on"
    );
    let app_ram = until(
        client,
        "live stats",
        UI_TIMEOUT,
        "/^App \\d+ MB$/.test(document.querySelector('#st-app').textContent) && document.querySelector('#st-app').textContent",
    )
    .await?;
    eprintln!("status bar: {backend} -> CPU · safe mode, {app_ram}");

    // 7. Not audio: its row shows the engine's error, and the app goes on.
    let notes = scratch.join("notes.txt");
    std::fs::write(&notes, "meeting notes, not a recording\n")?;
    call(
        client,
        "window.diaristE2E.drop(arguments[0])",
        vec![json!([notes])],
    )
    .await?;
    let error = until(
        client,
        "the bad file's error",
        JOB_TIMEOUT,
        "document.querySelector(\".job[data-state='failed'] .job-error\")?.textContent || null",
    )
    .await?;
    let error = error.as_str().unwrap_or_default();
    ensure!(
        error.contains("notes.txt"),
        "the error does not name the file: {error:?}"
    );
    eprintln!("bad file row: {error}");

    // Re-run the sample with exactly 2 speakers: the queue keeps working.
    client
        .find(Locator::Css("#rerun-btn"))
        .await?
        .click()
        .await?;
    until(
        client,
        "the re-run to finish",
        JOB_TIMEOUT,
        "document.querySelectorAll(\".job[data-state='done']\").length === 2",
    )
    .await?;
    let lanes = client.find_all(Locator::Css("#tl-lanes .lane")).await?;
    ensure!(lanes.len() == 2, "the re-run shows {} lanes", lanes.len());

    // 8. Record a meeting: the virtual microphone (scripts/virtual-mic.sh)
    // hears the sample; live voices appear where they were heard, one is
    // named during the meeting, and after Stop the final timeline appears
    // and keeps that name.
    record_a_meeting(client, scratch).await?;

    // The whole window at the end, for whoever reviews a run.
    std::fs::write(
        repo_root().join("target").join("e2e-final.png"),
        client.screenshot().await?,
    )?;
    Ok(())
}

async fn record_a_meeting(client: &Client, scratch: &Path) -> Result<()> {
    let sink = std::env::var("DIARIST_VIRTUAL_SINK")
        .context("no virtual microphone: run under scripts/e2e.sh")?;
    client
        .find(Locator::Css("#record-btn"))
        .await?
        .click()
        .await?;
    until(
        client,
        "the recording panel",
        UI_TIMEOUT,
        "!document.getElementById('recording').hidden && window.diaristE2E.recording()",
    )
    .await?;
    let player = Command::new("paplay")
        .args(["-d", &sink])
        .arg(repo_root().join("samples").join("sample.wav"))
        .spawn()
        .context("paplay")?;
    let mut player = Driver(player);
    until(
        client,
        "the level meter to move",
        UI_TIMEOUT,
        "parseFloat(document.getElementById('rec-level').style.width) > 5",
    )
    .await?;
    // The sample's first voice speaks from 6.7 s: labelled within seconds,
    // placed where it was heard.
    until(
        client,
        "a live voice",
        JOB_TIMEOUT,
        "(() => { const bars = [...document.querySelectorAll('#live-lanes .turn')];
                  return bars.length > 0 && bars.every(b => Number(b.dataset.start) >= 5
                    && Number(b.dataset.end) > Number(b.dataset.start)
                    && b.offsetLeft > 0); })()",
    )
    .await?;
    let first_live = client
        .find(Locator::Css("#live-speakers input.live-name"))
        .await?;
    first_live.send_keys("Bob").await?;
    first_live.send_keys(&Key::Enter.to_string()).await?;
    until(
        client,
        "the live name on the live timeline",
        UI_TIMEOUT,
        "[...document.querySelectorAll('#live-labels .lane-name')].some(e => e.textContent === 'Bob')",
    )
    .await?;
    // The recording panel as users see it, for whoever reviews a run.
    std::fs::write(
        repo_root().join("target").join("e2e-recording.png"),
        client.screenshot().await?,
    )?;
    let elapsed = text(client, "#rec-elapsed").await?;
    ensure!(
        elapsed != "0:00",
        "the elapsed time did not move: {elapsed}"
    );
    // Let the whole sample play, so the final pass hears both voices.
    let played = tokio::task::spawn_blocking(move || player.0.wait()).await??;
    ensure!(played.success(), "paplay failed");
    let live_voices = client
        .find_all(Locator::Css("#live-lanes .lane"))
        .await?
        .len();
    client
        .find(Locator::Css("#rec-stop"))
        .await?
        .click()
        .await?;
    let view = finished_job(
        client,
        "the recording's final timeline",
        "[...document.querySelectorAll('.job')].at(-1)",
        "document.getElementById('recording').hidden && !document.getElementById('results').hidden",
    )
    .await?;
    let path = PathBuf::from(view["path"].as_str().context("path")?);
    ensure!(
        path.starts_with(scratch.join("data")),
        "the recording went to {path:?}, not the app's data folder"
    );
    let seconds = view["result"]["duration_s"].as_f64().context("duration")?;
    ensure!(
        seconds >= 29.0,
        "the recording holds {seconds} s of a 30 s sample"
    );
    let lanes = client
        .find_all(Locator::Css("#tl-lanes .lane"))
        .await?
        .len();
    let shown_names = client
        .execute(
            "return [...document.querySelectorAll('#tl-labels .lane-name')].map(e => e.textContent);",
            vec![],
        )
        .await?;
    eprintln!("recording: {seconds:.1} s, {live_voices} live voices, final lanes {shown_names}");
    // How many voices the final pass finds in a re-recorded clip is
    // tests/record.rs's business; here the timeline must be there, named.
    ensure!(lanes >= 1, "the final timeline has no lanes");
    ensure!(
        shown_names
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == "Bob")),
        "the live name did not reach the final timeline: {shown_names}"
    );
    Ok(())
}
