//! Live resource figures, sampled about once a second while someone
//! listens: system RAM, this process's RSS and CPU, and GPU memory.
//!
//! The sampler thread never touches the GPU: the engine thread refreshes a
//! shared [`GpuMemory`] snapshot (when idle and between batches) and the
//! sampler only reads it, so "no GPU call off the engine thread" holds.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::events::{Hub, lock};

/// How often the sampler reports.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// GPU memory of the device the engine runs on, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuMemory {
    pub used_bytes: u64,
    pub total_bytes: u64,
}

/// One sample. Sizes in bytes; `process_cpu_percent` is 100 per fully busy core.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub ram_used_bytes: u64,
    pub ram_total_bytes: u64,
    pub process_rss_bytes: u64,
    pub process_cpu_percent: f32,
    /// `None` on the CPU or where the backend cannot tell.
    pub gpu: Option<GpuMemory>,
}

/// The engine thread writes it, the sampler reads it.
pub(crate) type GpuSnapshot = Arc<Mutex<Option<GpuMemory>>>;

/// sysinfo state kept between samples: CPU % is a difference between two
/// refreshes, so the first sample reports 0.
pub struct SystemProbe {
    system: System,
    pid: Option<Pid>,
}

impl SystemProbe {
    /// `None` where sysinfo does not support this platform.
    pub fn new() -> Option<Self> {
        Some(Self {
            system: System::new().ok()?,
            pid: sysinfo::get_current_pid().ok(),
        })
    }

    pub fn sample(&mut self, gpu: Option<GpuMemory>) -> StatsSnapshot {
        self.system.refresh_memory();
        let mut snapshot = StatsSnapshot {
            ram_used_bytes: self.system.used_memory(),
            ram_total_bytes: self.system.total_memory(),
            gpu,
            ..StatsSnapshot::default()
        };
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing()
                    .with_memory()
                    .with_cpu()
                    .without_tasks(),
            );
            if let Some(process) = self.system.process(pid) {
                snapshot.process_rss_bytes = process.memory();
                snapshot.process_cpu_percent = process.cpu_usage();
            }
        }
        snapshot
    }

    /// Memory the OS could give us now without swapping.
    pub fn available_memory(&mut self) -> u64 {
        self.system.refresh_memory();
        self.system.available_memory()
    }
}

/// This process's resident set size in bytes, or `None` where unknown.
pub fn process_rss_bytes() -> Option<u64> {
    let snapshot = SystemProbe::new()?.sample(None);
    (snapshot.process_rss_bytes > 0).then_some(snapshot.process_rss_bytes)
}

/// The most resident memory this process has held so far (Linux `VmHWM`),
/// or `None` where the kernel does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Starts the sampler thread on demand and lets it stop itself when the
/// last stats subscriber is gone.
#[derive(Default)]
pub(crate) struct SamplerControl {
    state: Mutex<SamplerState>,
}

#[derive(Default)]
struct SamplerState {
    running: bool,
    shut_down: bool,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SamplerControl {
    pub fn is_running(&self) -> bool {
        lock(&self.state).running
    }

    /// Called after a stats subscriber was added to `hub`.
    pub fn ensure_running(self: &Arc<Self>, hub: Arc<Hub>, gpu: GpuSnapshot) {
        let mut state = lock(&self.state);
        if state.running || state.shut_down {
            return;
        }
        // The previous sampler has decided to exit; wait for it so that
        // only one ever runs.
        if let Some(old) = state.thread.take() {
            let _ = old.join();
        }
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let control = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("diarist-stats".into())
            .spawn(move || control.run(&hub, &gpu, &stop_rx));
        // Without a sampler thread the app simply gets no stats; nothing else
        // depends on it, so a failed spawn is not an engine error.
        if let Ok(thread) = spawned {
            state.running = true;
            state.stop = Some(stop_tx);
            state.thread = Some(thread);
        }
    }

    fn run(&self, hub: &Hub, gpu: &GpuSnapshot, stop: &crossbeam_channel::Receiver<()>) {
        let mut probe = SystemProbe::new();
        loop {
            let gpu_now = *lock(gpu);
            let snapshot = match probe.as_mut() {
                Some(p) => p.sample(gpu_now),
                None => StatsSnapshot {
                    gpu: gpu_now,
                    ..StatsSnapshot::default()
                },
            };
            if hub.emit_stats(snapshot) == 0 {
                // Re-check under the state lock: a subscriber that arrived
                // after emit_stats must find `running` false and restart us.
                let mut state = lock(&self.state);
                if hub.stats_subscribers() == 0 {
                    state.running = false;
                    state.stop = None;
                    return;
                }
            }
            match stop.recv_timeout(SAMPLE_INTERVAL) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        lock(&self.state).running = false;
    }

    /// Stops the sampler for good (engine shutdown) and joins it.
    pub fn shut_down(&self) {
        let thread = {
            let mut state = lock(&self.state);
            state.shut_down = true;
            if let Some(stop) = state.stop.take() {
                let _ = stop.try_send(());
            }
            state.thread.take()
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_ram_and_rss() {
        let mut probe = SystemProbe::new().unwrap();
        let s = probe.sample(None);
        assert!(s.ram_total_bytes > 0);
        assert!(s.ram_used_bytes <= s.ram_total_bytes);
        assert!(s.process_rss_bytes > 1 << 20, "rss {}", s.process_rss_bytes);
        assert!(probe.available_memory() > 0);
    }

    #[test]
    fn snapshot_serialises_camel_case() {
        let s = StatsSnapshot {
            gpu: Some(GpuMemory {
                used_bytes: 1,
                total_bytes: 2,
            }),
            ..StatsSnapshot::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["gpu"]["totalBytes"], 2);
        assert!(json.get("processRssBytes").is_some());
    }
}
