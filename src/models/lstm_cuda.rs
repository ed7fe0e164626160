//! The LSTM cell as one CUDA kernel (`cuda/lstm_cell.cu`, compiled to PTX by
//! build.rs). A step of the generic recurrence otherwise launches about nine
//! tiny element-wise kernels, and on a GPU those launches, not arithmetic,
//! set the pace of the segmentation and embedding networks.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/lstm_cell.ptx"));
const MODULE: &str = "diarist_lstm_cell";
const FUNCTION: &str = "diarist_lstm_cell_f32";

/// One step for `rows` = directions × batch rows: xw and hw (rows,
/// 4·hidden), c (rows, hidden) → (2, rows, hidden) holding h then c.
struct FusedCell {
    rows: usize,
    hidden: usize,
}

/// The next (h, c) from this step's input projection `xw`, the recurrent
/// product `hw` (both (…, 4·hidden)) and the cell state `c` (…, hidden).
/// Only for float32 tensors on a CUDA device.
pub(super) fn step(xw: &Tensor, hw: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
    let dims = c.dims().to_vec();
    let hidden = c.dim(candle_core::D::Minus1)?;
    let rows = c.elem_count() / hidden.max(1);
    let op = FusedCell { rows, hidden };
    let both = xw.apply_op3_no_bwd(hw, c, &op)?;
    Ok((
        both.get(0)?.reshape(dims.as_slice())?,
        both.get(1)?.reshape(dims.as_slice())?,
    ))
}

impl CustomOp3 for FusedCell {
    fn name(&self) -> &'static str {
        "lstm-cell"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        // The CPU has its own fused recurrence (lstm.rs, `cpu`).
        candle_core::bail!("the fused CUDA LSTM cell was called on the CPU")
    }

    fn cuda_fwd(
        &self,
        xw: &CudaStorage,
        xw_layout: &Layout,
        hw: &CudaStorage,
        hw_layout: &Layout,
        c: &CudaStorage,
        c_layout: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (rows, hidden) = (self.rows, self.hidden);
        let n = rows * hidden;
        for (layout, len) in [(xw_layout, 4 * n), (hw_layout, 4 * n), (c_layout, n)] {
            if !layout.is_contiguous() || layout.shape().elem_count() != len {
                candle_core::bail!("lstm-cell: expects contiguous inputs of {len} values");
            }
        }
        if xw.dtype() != DType::F32 || hw.dtype() != DType::F32 || c.dtype() != DType::F32 {
            candle_core::bail!("lstm-cell: float32 only");
        }
        let device = xw.device().clone();
        let xw = xw.as_cuda_slice::<f32>()?.slice(xw_layout.start_offset()..);
        let hw = hw.as_cuda_slice::<f32>()?.slice(hw_layout.start_offset()..);
        let c = c.as_cuda_slice::<f32>()?.slice(c_layout.start_offset()..);
        // SAFETY: the kernel writes all 2·n values before anyone reads them.
        let out = unsafe { device.alloc::<f32>(2 * n) }?;
        let func = device.get_or_load_custom_func(FUNCTION, MODULE, PTX)?;
        let (rows_arg, hidden_arg) = (rows as u32, hidden as u32);
        let mut launch = func.builder();
        launch.arg(&xw);
        launch.arg(&hw);
        launch.arg(&c);
        launch.arg(&out);
        launch.arg(&rows_arg);
        launch.arg(&hidden_arg);
        // SAFETY: argument types and order match diarist_lstm_cell_f32, and
        // every buffer holds the lengths checked above.
        unsafe { launch.launch(LaunchConfig::for_num_elems(n as u32)) }.w()?;
        Ok((
            CudaStorage::wrap_cuda_slice(out, device),
            Shape::from((2, rows, hidden)),
        ))
    }
}
