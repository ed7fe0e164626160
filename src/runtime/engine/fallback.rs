//! What the engine does when work fails, written once for file jobs and
//! live steps: every run is inside `catch_unwind` (a panic drops the
//! diarizer, which may be half-updated, and the next run reloads it), and a
//! failure on a GPU is announced, the GPU freed, the pipeline reloaded on
//! the CPU (safe mode stays on until the user turns it off) and the same
//! work re-run there (ARCHITECTURE.md, point 3).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::Ordering;

use candle_core::Device;

use super::Shared;
use super::worker::Worker;
use crate::error::{Error, Result, panic_message};
use crate::runtime::Diarizer;
use crate::runtime::device::Backend;
use crate::runtime::events::{Event, Fallback, JobId};
use crate::runtime::fault::FaultInjection;

/// What one run of work on the diarizer may use besides the diarizer.
pub(super) struct Run<'a> {
    pub shared: &'a Shared,
    pub device: &'a Device,
    pub fault: Option<&'a mut FaultInjection>,
    pub backend: Backend,
}

impl<D: Diarizer> Worker<D> {
    /// Runs `work`; if it fails on a GPU in a way the CPU may not (see
    /// `falls_back`), announces `Event::Fallback`, records it in `fallback`
    /// (for the job's `Done`), reloads on the CPU and runs `work` again
    /// there. `work` must start from the same input both times.
    pub(super) fn with_fallback<T>(
        &mut self,
        job: JobId,
        fallback: &mut Option<Fallback>,
        mut work: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let error = match work(self) {
            Err(e) if self.backend.is_gpu() && falls_back(&e) => e,
            done => return done,
        };
        let from = self.backend;
        // candle appends a backtrace to some errors: users get its first
        // line, the part that says what went wrong.
        let message = error.to_string();
        let reason = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        self.shared.hub.emit(Event::Fallback {
            job,
            from,
            reason: reason.clone(),
        });
        *fallback = Some(Fallback {
            from,
            reason: reason.clone(),
        });
        self.fall_back_to_cpu(format!("{from} failed: {reason}"))?;
        work(self)
    }

    /// Drops the GPU pipeline, loads on the CPU and stays in safe mode
    /// until the user turns it off.
    pub(super) fn fall_back_to_cpu(&mut self, reason: String) -> Result<()> {
        self.safe_mode = true;
        self.shared.want_safe_mode.store(true, Ordering::SeqCst);
        self.switch_to(Backend::Cpu, reason)
    }

    /// One run of `work` on the current backend's diarizer (loaded first
    /// when a failure dropped it), panics caught.
    pub(super) fn attempt<T>(
        &mut self,
        work: impl FnOnce(&mut D, Run<'_>) -> Result<T>,
    ) -> Result<T> {
        if self.diarizer.is_none() {
            self.diarizer = Some(load_caught::<D>(&self.models_dir, &self.device)?);
        }
        let Worker {
            shared,
            device,
            diarizer,
            fault,
            backend,
            ..
        } = self;
        let Some(diarizer) = diarizer.as_mut() else {
            return Err(Error::EngineStopped);
        };
        let run = Run {
            shared,
            device,
            fault: fault.as_mut(),
            backend: *backend,
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(diarizer, run)));
        result.unwrap_or_else(|payload| {
            // A panic may have left the pipeline half-updated: reload it.
            self.diarizer = None;
            Err(Error::Panic(panic_message(payload.as_ref())))
        })
    }
}

/// Whether a failed GPU job should be re-run on the CPU: everything but
/// bad input (which would fail there too) and the user's own cancel.
fn falls_back(e: &Error) -> bool {
    !matches!(
        e,
        Error::Cancelled
            | Error::Decode { .. }
            | Error::DecoderPanic(_)
            | Error::Io { .. }
            | Error::InvalidOption(_)
            | Error::Parse { .. }
    )
}

/// `D::load`, with a panic turned into an error.
pub(super) fn load_caught<D: Diarizer>(models_dir: &Path, device: &Device) -> Result<D> {
    catch_unwind(AssertUnwindSafe(|| D::load(models_dir, device)))
        .unwrap_or_else(|payload| Err(Error::Panic(panic_message(payload.as_ref()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_and_cancel_do_not_fall_back() {
        assert!(!falls_back(&Error::Cancelled));
        assert!(!falls_back(&Error::decode("a.wav", "bad")));
        assert!(!falls_back(&Error::InvalidOption("x".into())));
        assert!(!falls_back(&Error::io(
            "a.wav",
            std::io::Error::other("gone")
        )));
        assert!(falls_back(&Error::Panic("boom".into())));
        assert!(falls_back(&Error::Backend {
            backend: "cuda".into(),
            reason: "out of memory".into()
        }));
        assert!(falls_back(&Error::Candle(candle_core::Error::Msg(
            "oom".into()
        ))));
    }

    #[test]
    fn panic_messages_are_kept() {
        let caught = catch_unwind(|| panic!("kernel {} missing", 3)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "kernel 3 missing");
        let caught = catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "plain");
    }

    /// A diarizer whose live steps succeed and return no turns.
    struct QuietLive;

    impl Diarizer for QuietLive {
        fn load(_: &Path, _: &Device) -> Result<Self> {
            Ok(Self)
        }

        fn diarize(
            &mut self,
            _: &crate::runtime::JobSpec,
            _: usize,
            _: &mut dyn crate::Progress,
        ) -> Result<crate::Diarization> {
            Err(Error::InvalidOption("live only".into()))
        }

        fn live_advance(
            &mut self,
            _: &mut crate::pipeline::live::LiveState,
        ) -> Result<Vec<crate::pipeline::live::LiveTurn>> {
            Ok(Vec::new())
        }
    }

    /// A live step that fails on the GPU goes through the same fallback as
    /// a file job: announced, reloaded on the CPU, re-run, safe mode on.
    fn live_step_falls_back(kind: crate::runtime::FaultKind, reason_has: &str) {
        use crate::runtime::{Engine, EngineConfig, FaultInjection, LiveSpec};
        let mut config = EngineConfig::new("models");
        config.device = crate::runtime::DevicePreference::Cpu;
        config.simulate_gpu = true;
        config.fault = Some(FaultInjection {
            on_batch: 1,
            kind,
            times: 1,
        });
        let engine = Engine::start::<QuietLive>(config).expect("a stand-in loads");
        let rx = engine.subscribe_jobs();
        let session = engine.start_live(LiveSpec::new("meeting.wav")).unwrap();
        let job = session.job();
        session.push(0, vec![0.0; 16_000]).unwrap();
        session.finish();
        let mut events = Vec::new();
        loop {
            let event = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{e}; events so far: {events:#?}"));
            let done = matches!(event, Event::Done { .. } | Event::Failed { .. });
            events.push(event);
            if done {
                break;
            }
        }
        let fallback_at = events
            .iter()
            .position(|e| matches!(e, Event::Fallback { job: j, from: Backend::SimulatedGpu, reason } if *j == job && reason.contains(reason_has)))
            .unwrap_or_else(|| panic!("no Fallback event: {events:#?}"));
        assert!(
            matches!(
                events[fallback_at + 1],
                Event::BackendChanged {
                    backend: Backend::Cpu,
                    safe_mode: true,
                    ..
                }
            ),
            "{events:#?}"
        );
        match events.last() {
            Some(Event::Done {
                job: j,
                backend,
                fallback: Some(fallback),
                ..
            }) => {
                assert_eq!((*j, *backend), (job, Backend::Cpu));
                assert_eq!(fallback.from, Backend::SimulatedGpu);
            }
            other => panic!("expected Done with a fallback, got {other:?}"),
        }
        assert!(engine.status().safe_mode);
        engine.shutdown();
    }

    #[test]
    fn a_live_step_that_errs_on_the_gpu_is_rerun_on_the_cpu() {
        live_step_falls_back(crate::runtime::FaultKind::Error, "injected fault");
    }

    #[test]
    fn a_live_step_that_panics_on_the_gpu_is_rerun_on_the_cpu() {
        live_step_falls_back(crate::runtime::FaultKind::Panic, "panic in a live step");
    }
}
