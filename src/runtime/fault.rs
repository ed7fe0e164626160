//! Fault injection, so that GPU fallback can be tested on CPU-only CI.
//!
//! Together with [`Backend::SimulatedGpu`] (the CPU, treated as a GPU) the
//! engine can be made to fail the Nth batch of a job with an error or a
//! panic, exactly where a real out-of-memory would surface: inside
//! `Diarizer::diarize`, between two network calls. The injection wraps the
//! job's `Progress`, so it works with any `Diarizer` that reports per batch.
//! A live session's step fails the same way, before the networks run.

use std::ops::ControlFlow;

use super::device::Backend;
use crate::Diarization;
use crate::error::{Error, Result};
use crate::pipeline::live::{LiveState, LiveTurn};
use crate::pipeline::{Diarizer, JobSpec};
use crate::progress::{Progress, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `diarize` returns an `Error::Backend` (like a CUDA out-of-memory).
    Error,
    /// `diarize` panics (like a kernel assertion in the backend).
    Panic,
}

/// Fail the `on_batch`-th progress update (1-based) of the next `times`
/// jobs run on a GPU backend. The CPU is never faulted, so a fallback
/// always completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInjection {
    pub on_batch: usize,
    pub kind: FaultKind,
    pub times: usize,
}

/// The reason reported for an injected error.
pub const INJECTED_REASON: &str = "injected fault: simulated out of memory";

/// Runs one attempt of a job, failing it as `fault` says when on a GPU.
pub(crate) fn diarize_with_faults<D: Diarizer>(
    diarizer: &mut D,
    job: &JobSpec,
    batch_size: usize,
    progress: &mut dyn Progress,
    fault: Option<&mut FaultInjection>,
    backend: Backend,
) -> Result<Diarization> {
    let Some(fault) = fault.filter(|f| f.times > 0 && backend.is_gpu()) else {
        return diarizer.diarize(job, batch_size, progress);
    };
    let mut faulty = FaultyProgress {
        inner: progress,
        fault,
        seen: 0,
        fired: false,
    };
    let result = diarizer.diarize(job, batch_size, &mut faulty);
    if faulty.fired {
        return Err(Error::Backend {
            backend: backend.as_str().into(),
            reason: format!("{INJECTED_REASON} at batch {}", faulty.fault.on_batch),
        });
    }
    result
}

/// Runs one live step, failing it as `fault` says when on a GPU (a step
/// has no batches: `on_batch` is ignored, each faulted step fails at once).
pub(crate) fn live_advance_with_faults<D: Diarizer>(
    diarizer: &mut D,
    state: &mut LiveState,
    fault: Option<&mut FaultInjection>,
    backend: Backend,
) -> Result<Vec<LiveTurn>> {
    let Some(fault) = fault.filter(|f| f.times > 0 && backend.is_gpu()) else {
        return diarizer.live_advance(state);
    };
    fault.times -= 1;
    match fault.kind {
        FaultKind::Panic => panic!("injected fault: panic in a live step"),
        FaultKind::Error => Err(Error::Backend {
            backend: backend.as_str().into(),
            reason: INJECTED_REASON.into(),
        }),
    }
}

struct FaultyProgress<'a> {
    inner: &'a mut dyn Progress,
    fault: &'a mut FaultInjection,
    seen: usize,
    fired: bool,
}

impl Progress for FaultyProgress<'_> {
    fn update(&mut self, stage: Stage, done: usize, total: usize) -> ControlFlow<()> {
        self.seen += 1;
        if self.seen == self.fault.on_batch {
            self.fault.times -= 1;
            match self.fault.kind {
                FaultKind::Panic => panic!("injected fault: panic at batch {}", self.seen),
                // Break makes the pipeline unwind as it would on a failing
                // network call; the error itself is substituted above.
                FaultKind::Error => {
                    self.fired = true;
                    return ControlFlow::Break(());
                }
            }
        }
        self.inner.update(stage, done, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StageTimings;
    use candle_core::Device;
    use std::path::Path;

    /// Reports `batches` updates and honours Break.
    struct Counter {
        batches: usize,
    }

    impl Diarizer for Counter {
        fn load(_: &Path, _: &Device) -> Result<Self> {
            Ok(Self { batches: 4 })
        }

        fn diarize(&mut self, _: &JobSpec, _: usize, p: &mut dyn Progress) -> Result<Diarization> {
            for i in 0..self.batches {
                if p.update(Stage::Segmentation, i + 1, self.batches)
                    .is_break()
                {
                    return Err(Error::Cancelled);
                }
            }
            Ok(Diarization::new(
                "x",
                1.0,
                vec![],
                "cpu",
                StageTimings::default(),
            ))
        }
    }

    fn job() -> JobSpec {
        JobSpec {
            path: "x.wav".into(),
            options: Default::default(),
        }
    }

    #[test]
    fn error_fires_once_and_only_on_gpu() {
        let mut d = Counter::load(Path::new("."), &Device::Cpu).unwrap();
        let mut fault = FaultInjection {
            on_batch: 2,
            kind: FaultKind::Error,
            times: 1,
        };
        let cpu = diarize_with_faults(&mut d, &job(), 1, &mut (), Some(&mut fault), Backend::Cpu);
        assert!(cpu.is_ok(), "the CPU is never faulted");
        assert_eq!(fault.times, 1);

        let gpu = Backend::SimulatedGpu;
        let err =
            diarize_with_faults(&mut d, &job(), 1, &mut (), Some(&mut fault), gpu).unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{err}");
        assert!(err.to_string().contains("batch 2"), "{err}");
        assert_eq!(fault.times, 0);

        assert!(diarize_with_faults(&mut d, &job(), 1, &mut (), Some(&mut fault), gpu).is_ok());
    }

    #[test]
    fn panic_fires_inside_diarize() {
        let mut d = Counter::load(Path::new("."), &Device::Cpu).unwrap();
        let mut fault = FaultInjection {
            on_batch: 3,
            kind: FaultKind::Panic,
            times: 1,
        };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let gpu = Backend::SimulatedGpu;
            diarize_with_faults(&mut d, &job(), 1, &mut (), Some(&mut fault), gpu)
        }));
        assert!(caught.is_err());
        assert_eq!(fault.times, 0);
    }
}
