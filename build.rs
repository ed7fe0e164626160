//! With the `cuda` feature, compiles Diarist's own CUDA kernels to PTX with
//! nvcc (which candle's `cuda` feature needs anyway). The PTX is loaded at
//! run time by the CUDA device, so it works on any card the driver supports.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: &[&str] = &["src/kernels/cuda/lstm_cell.cu"];

fn main() {
    for kernel in KERNELS {
        println!("cargo::rerun-if-changed={kernel}");
    }
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let nvcc = std::env::var_os("NVCC").unwrap_or_else(|| "nvcc".into());
    // Virtual architecture: the driver JIT-compiles the PTX for the card.
    let arch = match std::env::var("CUDA_COMPUTE_CAP") {
        Ok(cap) if !cap.is_empty() => format!("compute_{cap}"),
        _ => "compute_70".to_string(),
    };
    for kernel in KERNELS {
        let stem = PathBuf::from(kernel);
        let stem = stem.file_stem().expect("kernel files have names");
        let ptx = out_dir.join(stem).with_extension("ptx");
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", &format!("-arch={arch}")])
            .arg(kernel)
            .arg("-o")
            .arg(&ptx)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("nvcc failed on {kernel} ({s})"),
            Err(e) => panic!("cannot run nvcc for {kernel}: {e} (set NVCC or put it on PATH)"),
        }
    }
}
