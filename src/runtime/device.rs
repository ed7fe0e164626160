//! Backend choice: which device the engine runs on, decided once at start
//! and reported with the reason, in the spirit of Handy's "pick the
//! accelerator, fall back to CPU, say why".
//!
//! The GPU is chosen once ([`choose_gpu`]); safe mode and fallback only
//! switch between that GPU and the CPU, they never probe again.

use std::str::FromStr;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable that overrides [`DevicePreference::Auto`].
pub const DEVICE_ENV: &str = "DIARIST_DEVICE";

/// What the user asked for (`--device`, `DIARIST_DEVICE`, app setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevicePreference {
    /// Metal on macOS, CUDA when built with the `cuda` feature and a card
    /// answers, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

impl FromStr for DevicePreference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu-cuda" => Ok(Self::Cuda),
            "metal" | "mps" => Ok(Self::Metal),
            other => Err(Error::InvalidOption(format!(
                "unknown device {other:?}: expected auto, cpu, cuda or metal"
            ))),
        }
    }
}

impl DevicePreference {
    /// Applies `DIARIST_DEVICE` when the preference is `Auto`; an explicit
    /// flag always wins over the environment.
    pub fn with_env_override(self) -> Result<Self> {
        self.override_with(std::env::var(DEVICE_ENV).ok().as_deref())
    }

    fn override_with(self, env: Option<&str>) -> Result<Self> {
        match (self, env) {
            (Self::Auto, Some(value)) if !value.trim().is_empty() => value.parse().map_err(|_| {
                Error::InvalidOption(format!(
                    "{DEVICE_ENV}={value:?}: expected auto, cpu, cuda or metal"
                ))
            }),
            _ => Ok(self),
        }
    }
}

/// Where a pipeline actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Cpu,
    Cuda,
    Metal,
    /// The CPU, treated as a GPU for safe mode and fallback, so that those
    /// paths can be exercised on machines without one.
    SimulatedGpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Metal => "metal",
            Self::SimulatedGpu => "simulated-gpu",
        }
    }

    /// Whether a failure here should fall back to the CPU.
    pub fn is_gpu(self) -> bool {
        !matches!(self, Self::Cpu)
    }

    /// Opens this backend's device. Called only on the engine thread.
    pub(crate) fn open(self) -> Result<Device> {
        match self {
            Self::Cpu | Self::SimulatedGpu => Ok(Device::Cpu),
            Self::Cuda => Ok(Device::new_cuda(0)?),
            Self::Metal => Ok(Device::new_metal(0)?),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of probing for a GPU once at start.
#[derive(Debug)]
pub struct GpuChoice {
    /// The GPU backend and its opened device, or `None` for CPU only.
    pub gpu: Option<(Backend, Device)>,
    /// Why: shown to the user next to the backend name.
    pub reason: String,
}

/// Probes for the GPU the preference asks for. Never fails: an unavailable
/// GPU becomes `gpu: None` with the reason.
pub fn choose_gpu(pref: DevicePreference, simulate_gpu: bool) -> GpuChoice {
    if simulate_gpu {
        return GpuChoice {
            gpu: Some((Backend::SimulatedGpu, Device::Cpu)),
            reason: "simulated GPU (the CPU, treated as a GPU for fallback tests)".into(),
        };
    }
    match pref {
        DevicePreference::Cpu => cpu_only("CPU requested"),
        DevicePreference::Cuda => try_open(Backend::Cuda, "CUDA requested"),
        DevicePreference::Metal => try_open(Backend::Metal, "Metal requested"),
        DevicePreference::Auto => auto(),
    }
}

fn auto() -> GpuChoice {
    if cfg!(target_os = "macos") {
        return try_open(Backend::Metal, "auto: Metal on macOS");
    }
    if cfg!(feature = "cuda") {
        return try_open(Backend::Cuda, "auto: built with CUDA");
    }
    cpu_only("auto: this build has no GPU backend (build with --features cuda for NVIDIA)")
}

fn try_open(backend: Backend, why: &str) -> GpuChoice {
    if let Some(missing) = not_compiled_in(backend) {
        return cpu_only(&format!("{why}, but {missing}; using the CPU"));
    }
    match backend.open() {
        Ok(device) => GpuChoice {
            gpu: Some((backend, device)),
            reason: format!("{why}: device 0 answered"),
        },
        Err(e) => cpu_only(&format!(
            "{why}, but it is unavailable ({e}); using the CPU"
        )),
    }
}

fn not_compiled_in(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Cuda if !cfg!(feature = "cuda") => {
            Some("this build has no CUDA support (rebuild with --features cuda)")
        }
        Backend::Metal if !cfg!(target_os = "macos") => Some("Metal exists only on macOS"),
        _ => None,
    }
}

fn cpu_only(reason: &str) -> GpuChoice {
    GpuChoice {
        gpu: None,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_spellings() {
        assert_eq!(
            "auto".parse::<DevicePreference>().unwrap(),
            DevicePreference::Auto
        );
        assert_eq!(
            " CPU ".parse::<DevicePreference>().unwrap(),
            DevicePreference::Cpu
        );
        assert_eq!(
            "cuda".parse::<DevicePreference>().unwrap(),
            DevicePreference::Cuda
        );
        assert_eq!(
            "Metal".parse::<DevicePreference>().unwrap(),
            DevicePreference::Metal
        );
        let err = "tpu".parse::<DevicePreference>().unwrap_err();
        assert!(err.to_string().contains("tpu"), "{err}");
    }

    #[test]
    fn env_overrides_only_auto() {
        let auto = DevicePreference::Auto;
        assert_eq!(
            auto.override_with(Some("cpu")).unwrap(),
            DevicePreference::Cpu
        );
        assert_eq!(auto.override_with(None).unwrap(), DevicePreference::Auto);
        assert_eq!(
            auto.override_with(Some("")).unwrap(),
            DevicePreference::Auto
        );
        assert_eq!(
            DevicePreference::Metal.override_with(Some("cpu")).unwrap(),
            DevicePreference::Metal
        );
        assert!(auto.override_with(Some("quantum")).is_err());
    }

    #[test]
    fn unavailable_gpu_becomes_cpu_with_reason() {
        let choice = choose_gpu(DevicePreference::Cpu, false);
        assert!(choice.gpu.is_none());
        assert_eq!(choice.reason, "CPU requested");

        if !cfg!(feature = "cuda") {
            let choice = choose_gpu(DevicePreference::Cuda, false);
            assert!(choice.gpu.is_none());
            assert!(
                choice.reason.contains("no CUDA support"),
                "{}",
                choice.reason
            );
        }
        if !cfg!(target_os = "macos") {
            let choice = choose_gpu(DevicePreference::Metal, false);
            assert!(choice.gpu.is_none());
            assert!(choice.reason.contains("only on macOS"), "{}", choice.reason);
        }
    }

    #[test]
    fn simulated_gpu_is_a_gpu_on_the_cpu() {
        let choice = choose_gpu(DevicePreference::Cpu, true);
        let (backend, device) = choice.gpu.unwrap();
        assert_eq!(backend, Backend::SimulatedGpu);
        assert!(backend.is_gpu());
        assert!(device.is_cpu());
        assert!(!Backend::Cpu.is_gpu());
    }
}
