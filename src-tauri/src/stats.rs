//! Resource stats for the status bar and the tray tooltip. The engine's
//! sampler runs only while someone subscribes, so the app subscribes only
//! while the window is visible: nobody looking means no sampling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diarist::runtime::{Backend, Engine, Event, StatsSnapshot};

/// How often the watcher checks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(250);

/// Where stats go: the window and the tray.
pub trait StatsSink: Send + 'static {
    fn stats(&self, snapshot: &StatsSnapshot);
}

/// Runs one watcher thread while the window is visible.
#[derive(Default)]
pub struct StatsWatch {
    running: Mutex<Option<Arc<AtomicBool>>>,
}

impl StatsWatch {
    /// Starts or stops watching; repeated calls with the same value are no-ops.
    pub fn set(&self, engine: &Engine, on: bool, sink: impl StatsSink) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match (on, running.take()) {
            (true, Some(stop)) => *running = Some(stop),
            (true, None) => {
                let stop = Arc::new(AtomicBool::new(false));
                let rx = engine.subscribe();
                let thread_stop = Arc::clone(&stop);
                let spawned = std::thread::Builder::new()
                    .name("diarist-app-stats".into())
                    .spawn(move || {
                        while !thread_stop.load(Ordering::SeqCst) {
                            match rx.recv_timeout(STOP_POLL) {
                                Ok(Event::Stats(s)) => sink.stats(&s),
                                Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                            }
                        }
                        // Dropping `rx` here unsubscribes; the engine's
                        // sampler stops when it was the last one.
                    });
                if spawned.is_ok() {
                    *running = Some(stop);
                }
            }
            (false, Some(stop)) => stop.store(true, Ordering::SeqCst),
            (false, None) => {}
        }
    }

    pub fn is_on(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }
}

/// "CPU", "Metal", "CUDA", as people write them.
pub fn backend_label(backend: Backend) -> &'static str {
    match backend {
        Backend::Cpu => "CPU",
        Backend::Cuda => "CUDA",
        Backend::Metal => "Metal",
        Backend::SimulatedGpu => "GPU (simulated)",
    }
}

/// The status bar in one line, for the tray tooltip.
pub fn tooltip_line(backend: Backend, safe_mode: bool, s: &StatsSnapshot) -> String {
    let backend = if safe_mode {
        format!("{} (safe mode)", backend_label(backend))
    } else {
        backend_label(backend).to_string()
    };
    let gpu = match s.gpu {
        Some(g) => format!("{} / {}", bytes(g.used_bytes), bytes(g.total_bytes)),
        None => "n/a".into(),
    };
    format!(
        "Diarist · {backend} · GPU {gpu} · app {} · RAM {} / {} · CPU {:.0}%",
        bytes(s.process_rss_bytes),
        bytes(s.ram_used_bytes),
        bytes(s.ram_total_bytes),
        s.process_cpu_percent
    )
}

/// Binary units with one decimal above a gigabyte, as Activity Monitor does.
pub fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    const GIB: f64 = MIB * 1024.0;
    let n = n as f64;
    if n >= GIB {
        format!("{:.1} GB", n / GIB)
    } else {
        format!("{:.0} MB", n / MIB)
    }
}

#[cfg(test)]
mod tests {
    use diarist::runtime::GpuMemory;

    use super::*;

    #[test]
    fn tooltip_reads_like_the_status_bar() {
        let mut s = StatsSnapshot {
            ram_used_bytes: 8 << 30,
            ram_total_bytes: 16 << 30,
            process_rss_bytes: 412 << 20,
            process_cpu_percent: 12.4,
            gpu: None,
        };
        assert_eq!(
            tooltip_line(Backend::Cpu, true, &s),
            "Diarist · CPU (safe mode) · GPU n/a · app 412 MB · RAM 8.0 GB / 16.0 GB · CPU 12%"
        );
        s.gpu = Some(GpuMemory {
            used_bytes: 3 << 29,
            total_bytes: 24 << 30,
        });
        assert!(tooltip_line(Backend::Metal, false, &s).contains("Metal · GPU 1.5 GB / 24.0 GB"));
    }
}
