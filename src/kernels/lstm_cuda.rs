//! The LSTM recurrence on CUDA (kernels in `cuda/lstm_cell.cu`, compiled to
//! PTX by build.rs). Through candle, a step is a matmul, the cell, and the
//! tensors that hold them: each op costs the host more time to issue than the
//! GPU takes to run it, so the host, not the GPU, set the pace of both
//! networks. Here a whole layer is one op: per step one cuBLAS product and
//! one cell kernel, writing straight into the layer's output.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::cublas::{Gemm, GemmConfig, StridedBatchedConfig, sys};
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/lstm_cell.ptx"));
const MODULE: &str = "diarist_lstm_cell";
const STEP_FUNCTION: &str = "diarist_lstm_step_f32";

/// Every step of one layer: xw (time, dirs, batch, 4·hidden), the input
/// projections in step order, and w_hh_t (dirs, hidden, 4·hidden) → h
/// (time, dirs, batch, hidden) in step order, from zero initial states.
/// Only for contiguous float32 tensors on a CUDA device.
pub(crate) fn recurrence(xw: &Tensor, w_hh_t: &Tensor) -> Result<Tensor> {
    xw.apply_op2_no_bwd(w_hh_t, &Recurrence)
}

struct Recurrence;

impl CustomOp2 for Recurrence {
    fn name(&self) -> &'static str {
        "lstm-recurrence"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        // The CPU has its own fused recurrence (lstm_cpu.rs).
        candle_core::bail!("the CUDA LSTM recurrence was called on the CPU")
    }

    fn cuda_fwd(
        &self,
        xw: &CudaStorage,
        xw_layout: &Layout,
        w: &CudaStorage,
        w_layout: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (time, dirs, batch, gates) = xw_layout.shape().dims4()?;
        let hidden = gates / 4;
        if !xw_layout.is_contiguous()
            || !w_layout.is_contiguous()
            || w_layout.shape().dims() != [dirs, hidden, gates]
            || gates != 4 * hidden
        {
            candle_core::bail!(
                "lstm-recurrence: expects contiguous xw (time, dirs, batch, 4·hidden) and w_hh_t (dirs, hidden, 4·hidden), got {:?} and {:?}",
                xw_layout.shape(),
                w_layout.shape()
            );
        }
        if xw.dtype() != DType::F32 || w.dtype() != DType::F32 {
            candle_core::bail!("lstm-recurrence: float32 only");
        }
        let device = xw.device().clone();
        let xw = xw.as_cuda_slice::<f32>()?.slice(xw_layout.start_offset()..);
        let w = w.as_cuda_slice::<f32>()?.slice(w_layout.start_offset()..);
        let rows = dirs * batch;
        let n = rows * hidden;
        // SAFETY: step t writes all n values of h at t before step t + 1
        // (or anyone else) reads them.
        let mut ys = unsafe { device.alloc::<f32>(time * n) }?;
        // SAFETY: every step's product overwrites all of hw (beta 0).
        let mut hw = unsafe { device.alloc::<f32>(rows * gates) }?;
        let mut c = device.alloc_zeros::<f32>(n)?;
        let h0 = device.alloc_zeros::<f32>(n)?;
        let blas = device.cublas_handle();
        let func = device.get_or_load_custom_func(STEP_FUNCTION, MODULE, PTX)?;
        let int = |v: usize| {
            i32::try_from(v)
                .map_err(|_| candle_core::Error::msg("lstm-recurrence: dimension too large"))
        };
        let long = |v: usize| {
            i64::try_from(v)
                .map_err(|_| candle_core::Error::msg("lstm-recurrence: dimension too large"))
        };
        let unsigned = |v: usize| {
            u32::try_from(v)
                .map_err(|_| candle_core::Error::msg("lstm-recurrence: dimension too large"))
        };
        // Row-major h (batch, hidden) · W (hidden, gates) is column-major
        // Wᵀ · hᵀ: m = gates, n = batch, k = hidden, one product a direction.
        let product = StridedBatchedConfig {
            gemm: GemmConfig {
                transa: sys::cublasOperation_t::CUBLAS_OP_N,
                transb: sys::cublasOperation_t::CUBLAS_OP_N,
                m: int(gates)?,
                n: int(batch)?,
                k: int(hidden)?,
                alpha: 1.0f32,
                lda: int(gates)?,
                ldb: int(hidden)?,
                beta: 0.0f32,
                ldc: int(gates)?,
            },
            batch_size: int(dirs)?,
            stride_a: long(hidden * gates)?,
            stride_b: long(batch * hidden)?,
            stride_c: long(batch * gates)?,
        };
        let (rows_arg, hidden_arg, cells) = (unsigned(rows)?, unsigned(hidden)?, unsigned(n)?);
        for t in 0..time {
            {
                let h_prev = if t == 0 {
                    h0.slice(..)
                } else {
                    ys.slice((t - 1) * n..t * n)
                };
                // SAFETY: the strides and leading dimensions above describe
                // exactly the buffers passed (dirs products of the sizes
                // checked above).
                unsafe { blas.gemm_strided_batched(product, &w, &h_prev, &mut hw) }.w()?;
            }
            let x_t = xw.slice(t * rows * gates..(t + 1) * rows * gates);
            let mut h_t = ys.slice_mut(t * n..(t + 1) * n);
            let mut launch = func.builder();
            launch.arg(&x_t);
            launch.arg(&hw);
            launch.arg(&mut c);
            launch.arg(&mut h_t);
            launch.arg(&rows_arg);
            launch.arg(&hidden_arg);
            // SAFETY: argument types and order match diarist_lstm_step_f32,
            // and every buffer holds rows × (4·)hidden values.
            unsafe { launch.launch(LaunchConfig::for_num_elems(cells)) }.w()?;
        }
        Ok((
            CudaStorage::wrap_cuda_slice(ys, device),
            Shape::from((time, dirs, batch, hidden)),
        ))
    }
}
