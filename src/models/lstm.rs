//! A multi-layer (optionally bidirectional) LSTM with PyTorch's weight layout
//! (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, and
//! `_reverse` for the backward direction; gates ordered i, f, g, o; h0 = c0 = 0).
//!
//! Two implementations compute the same function:
//! * the generic one, candle tensor ops only, runs on every device. The input
//!   projection x·W_ihᵀ of every step of every sequence and of both directions
//!   is one large matmul; each step then costs one batched matmul h·W_hhᵀ for
//!   both directions and a handful of element-wise ops;
//! * on the CPU (float32), a fused loop ([`cpu`]) whose per-step cost is one
//!   small gemm and one pass over the gates, with the directions (or, for a
//!   unidirectional LSTM, slices of the batch) on separate threads. A candle
//!   op per gate per step would allocate a fresh tensor every time, which
//!   dominates at these sizes.

use candle_core::{D, DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
}

/// One direction of one layer, as plain row-major f32 for the CPU path.
struct HostDirection {
    /// (input, 4·hidden)
    w_ih_t: Vec<f32>,
    /// (hidden, 4·hidden)
    w_hh_t: Vec<f32>,
    /// W_ihᵀ and W_hhᵀ in the packed kernel's layout, when it runs here.
    w_ih_packed: Option<crate::models::packed::Packed>,
    w_hh_packed: Option<crate::models::packed::Packed>,
    /// (4·hidden): bias_ih + bias_hh
    bias: Vec<f32>,
}

struct Layer {
    input_size: usize,
    /// (input, directions·4·hidden): every direction's W_ihᵀ side by side.
    w_ih_t: Tensor,
    /// (directions·4·hidden): bias_ih + bias_hh
    bias: Tensor,
    /// (directions, hidden, 4·hidden)
    w_hh_t: Tensor,
    /// Present when the weights live on the CPU.
    host: Option<Vec<HostDirection>>,
}

impl Layer {
    fn new(vb: &VarBuilder, input: usize, hidden: usize, suffixes: &[String]) -> Result<Self> {
        let mut w_ih_t = Vec::new();
        let mut w_hh_t = Vec::new();
        let mut bias = Vec::new();
        for suffix in suffixes {
            let w_ih = vb.get((4 * hidden, input), &format!("weight_ih_{suffix}"))?;
            let w_hh = vb.get((4 * hidden, hidden), &format!("weight_hh_{suffix}"))?;
            let b_ih = vb.get(4 * hidden, &format!("bias_ih_{suffix}"))?;
            let b_hh = vb.get(4 * hidden, &format!("bias_hh_{suffix}"))?;
            w_ih_t.push(w_ih.t()?);
            w_hh_t.push(w_hh.t()?.unsqueeze(0)?);
            bias.push((b_ih + b_hh)?);
        }
        let w_ih_t = Tensor::cat(&w_ih_t, 1)?.contiguous()?;
        let w_hh_t = Tensor::cat(&w_hh_t, 0)?.contiguous()?;
        let bias = Tensor::cat(&bias, 0)?;
        let host = if vb.device().is_cpu() {
            let gates = 4 * hidden;
            let mut directions = Vec::with_capacity(suffixes.len());
            for d in 0..suffixes.len() {
                let host = |t: Tensor| -> Result<Vec<f32>> {
                    t.to_dtype(DType::F32)?
                        .contiguous()?
                        .flatten_all()?
                        .to_vec1::<f32>()
                };
                let w_ih = host(w_ih_t.narrow(1, d * gates, gates)?)?;
                let w_hh = host(w_hh_t.i(d)?)?;
                directions.push(HostDirection {
                    w_ih_packed: crate::models::packed::Packed::new(&w_ih, input, gates),
                    w_hh_packed: crate::models::packed::Packed::new(&w_hh, hidden, gates),
                    w_ih_t: w_ih,
                    w_hh_t: w_hh,
                    bias: host(bias.narrow(0, d * gates, gates)?)?,
                });
            }
            Some(directions)
        } else {
            None
        };
        Ok(Self {
            input_size: input,
            w_ih_t,
            bias,
            w_hh_t,
            host,
        })
    }

    fn directions(&self) -> usize {
        self.w_hh_t.dim(0).unwrap_or(1)
    }

    fn hidden(&self) -> usize {
        self.w_hh_t.dim(1).unwrap_or(0)
    }

    /// Device-agnostic: xs (batch, time, input) → (batch, time, directions·hidden).
    fn forward_generic(&self, xs: &Tensor) -> Result<Tensor> {
        let (batch, time, input) = xs.dims3()?;
        let dirs = self.directions();
        let hidden = self.hidden();
        let gates = 4 * hidden;
        let xw = xs
            .reshape((batch * time, input))?
            .matmul(&self.w_ih_t)?
            .broadcast_add(&self.bias)?
            .reshape((batch, time, dirs, gates))?
            .permute((1, 2, 0, 3))?; // (time, dirs, batch, 4·hidden)
        // Step s feeds the forward direction time s and the backward one
        // time − 1 − s, so the backward half is stored time-reversed.
        let reversed = reversed_time(time, xs.device())?;
        let xw = backward_reversed(xw, &reversed)?;
        // One copy here makes every step's slice contiguous (the cat above
        // may return a strided view), which the CUDA recurrence requires.
        let xw = xw.contiguous()?; // (time, dirs, batch, 4·hidden) in step order
        let ys = self.recurrence(&xw, batch)?; // (time, dirs, batch, hidden) in step order
        let ys = backward_reversed(ys, &reversed)?; // (time, dirs, batch, hidden) in time order
        ys.permute((2, 0, 1, 3))?
            .contiguous()?
            .reshape((batch, time, dirs * hidden))
    }

    /// xw (time, dirs, batch, 4·hidden) in step order → h (time, dirs,
    /// batch, hidden) in step order: on CUDA one op for the whole layer,
    /// elsewhere op by op.
    fn recurrence(&self, xw: &Tensor, batch: usize) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if xw.device().is_cuda() && xw.dtype() == DType::F32 {
            return super::lstm_cuda::recurrence(xw, &self.w_hh_t);
        }
        self.recurrence_generic(xw, batch)
    }

    /// The recurrence op by op, as `recurrence` takes and returns it.
    fn recurrence_generic(&self, xw: &Tensor, batch: usize) -> Result<Tensor> {
        let (time, dirs) = (xw.dim(0)?, self.directions());
        let hidden = self.hidden();
        let mut h = Tensor::zeros((dirs, batch, hidden), xw.dtype(), xw.device())?;
        let mut c = h.clone();
        let mut outputs = Vec::with_capacity(time);
        for step in 0..time {
            let gates = if step == 0 {
                xw.i(step)?
            } else {
                (xw.i(step)? + h.matmul(&self.w_hh_t)?)?
            }; // (dirs, batch, 4·hidden)
            let sig = candle_nn::ops::sigmoid(&gates)?;
            let i = sig.narrow(D::Minus1, 0, hidden)?;
            let f = sig.narrow(D::Minus1, hidden, hidden)?;
            let o = sig.narrow(D::Minus1, 3 * hidden, hidden)?;
            let g = gates.narrow(D::Minus1, 2 * hidden, hidden)?.tanh()?;
            c = ((f * &c)? + (i * g)?)?;
            h = (o * c.tanh()?)?;
            outputs.push(h.clone());
        }
        Tensor::stack(&outputs, 0)
    }

    /// CPU float32: xs (batch, time, input) → (batch, time, directions·hidden).
    fn forward_host(&self, host: &[HostDirection], xs: &Tensor) -> Result<Tensor> {
        let (batch, time, input) = xs.dims3()?;
        let xs_host = xs.flatten_all()?.to_vec1::<f32>()?;
        let shape = cpu::Shape {
            batch,
            time,
            input,
            hidden: self.hidden(),
        };
        let ys = cpu::bidirectional(&xs_host, shape, host)?;
        Tensor::from_vec(ys, (batch, time, host.len() * shape.hidden), xs.device())
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if xs.dim(2)? != self.input_size {
            candle_core::bail!(
                "lstm: expected {} input features, got shape {:?}",
                self.input_size,
                xs.shape()
            )
        }
        match &self.host {
            Some(host) if xs.device().is_cpu() && xs.dtype() == DType::F32 => {
                self.forward_host(host, xs)
            }
            _ => self.forward_generic(xs),
        }
    }
}

/// xs (time, dirs, …) with the backward direction's (dirs = 2) time axis
/// reversed by `reversed` (`reversed_time`); the same for one direction.
fn backward_reversed(xs: Tensor, reversed: &Tensor) -> Result<Tensor> {
    if xs.dim(1)? != 2 {
        return Ok(xs);
    }
    let backward = xs
        .narrow(1, 1, 1)?
        .contiguous()?
        .index_select(reversed, 0)?;
    Tensor::cat(&[&xs.narrow(1, 0, 1)?, &backward], 1)
}

/// Indices time − 1, …, 0 as u32.
fn reversed_time(time: usize, device: &Device) -> Result<Tensor> {
    let indices: Vec<u32> = (0..time as u32).rev().collect();
    Tensor::from_vec(indices, time, device)
}

pub struct Lstm {
    layers: Vec<Layer>,
}

impl Lstm {
    pub fn new(cfg: &LstmConfig, vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(cfg.num_layers);
        let directions = if cfg.bidirectional { 2 } else { 1 };
        for layer in 0..cfg.num_layers {
            let input = if layer == 0 {
                cfg.input_size
            } else {
                directions * cfg.hidden_size
            };
            let mut suffixes = vec![format!("l{layer}")];
            if cfg.bidirectional {
                suffixes.push(format!("l{layer}_reverse"));
            }
            layers.push(Layer::new(&vb, input, cfg.hidden_size, &suffixes)?);
        }
        Ok(Self { layers })
    }

    /// The device-agnostic implementation (the one GPUs run), whatever the
    /// device: xs (batch, time, input) → (batch, time, hidden · directions).
    pub fn forward_generic(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward_generic(&xs)?;
        }
        Ok(xs)
    }

    /// The last time step's output: xs (batch, time, input) → (batch,
    /// hidden · directions). For a unidirectional LSTM this is the final
    /// hidden state of the last layer.
    pub fn forward_last(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.forward(xs)?;
        let time = ys.dim(1)?;
        ys.i((.., time - 1))
    }
}

impl Module for Lstm {
    /// xs: (batch, time, input) → (batch, time, hidden · directions)
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.contiguous()?;
        for layer in &self.layers {
            xs = layer.forward(&xs)?;
        }
        Ok(xs)
    }
}

mod cpu {
    //! The fused float32 CPU recurrence. One worker runs one direction over
    //! a slice of the batch for all time steps, so workers never wait on
    //! each other: no per-step synchronisation at all.

    use super::HostDirection;
    use crate::models::packed::gemm_accumulate;
    use candle_core::Result;

    #[derive(Debug, Clone, Copy)]
    pub(super) struct Shape {
        pub batch: usize,
        pub time: usize,
        pub input: usize,
        pub hidden: usize,
    }

    /// xs (batch, time, input) row-major → (batch, time, directions·hidden).
    pub(super) fn bidirectional(
        xs: &[f32],
        shape: Shape,
        directions: &[HostDirection],
    ) -> Result<Vec<f32>> {
        let Shape {
            batch,
            time,
            input,
            hidden,
        } = shape;
        let dirs = directions.len();
        let threads = candle_core::utils::get_num_threads().max(1);
        // Split the batch only as far as needed to give every thread work.
        let chunks = threads.div_ceil(dirs).clamp(1, batch.max(1));
        let chunk_len = batch.div_ceil(chunks).max(1);
        let mut jobs = Vec::new();
        for (d, direction) in directions.iter().enumerate() {
            for start in (0..batch).step_by(chunk_len) {
                let len = chunk_len.min(batch - start);
                jobs.push((d, direction, start, len));
            }
        }
        let width = dirs * hidden;
        let mut ys = vec![0f32; batch * time * width];
        let ys_ptr = SendPtr(ys.as_mut_ptr());
        let run = move |&(d, direction, start, len): &(usize, &HostDirection, usize, usize)| {
            let xs = &xs[start * time * input..(start + len) * time * input];
            let shape = Shape {
                batch: len,
                ..shape
            };
            let out = Out {
                // SAFETY: row start·time is inside ys (start < batch).
                ptr: unsafe { ys_ptr.get().add(start * time * width + d * hidden) },
                row_stride: width,
            };
            // SAFETY: this job alone touches columns [d·hidden, (d+1)·hidden)
            // of rows [start·time, (start+len)·time) of ys, and ys outlives
            // the scope.
            unsafe { direction_forward(xs, shape, direction, d == 1, out) };
        };
        std::thread::scope(|scope| {
            let (local, spawned) = jobs
                .split_first()
                .map_or((None, &[][..]), |(a, b)| (Some(a), b));
            let handles: Vec<_> = spawned
                .iter()
                .map(|job| scope.spawn(move || run(job)))
                .collect();
            if let Some(job) = local {
                run(job);
            }
            for handle in handles {
                // A panic in a worker is a bug in this module; re-raise it.
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
            }
        });
        Ok(ys)
    }

    /// A pointer that may cross into the scoped worker threads, which write
    /// disjoint parts of the buffer it points into.
    #[derive(Clone, Copy)]
    struct SendPtr(*mut f32);
    // SAFETY: see `bidirectional`: each worker writes its own columns and
    // rows only, and all of them finish before the buffer is read.
    unsafe impl Send for SendPtr {}
    unsafe impl Sync for SendPtr {}

    impl SendPtr {
        fn get(self) -> *mut f32 {
            self.0
        }
    }

    /// Where one direction writes its outputs: row `b·time + t` (hidden
    /// floats) at `ptr + (b·time + t)·row_stride`.
    struct Out {
        ptr: *mut f32,
        row_stride: usize,
    }

    /// Time steps whose input projections are computed together: enough rows
    /// per weight pass to keep the kernel busy, few enough that the chunk's
    /// gates (steps × batch × 4·hidden) stay in cache until the recurrence
    /// reads them, instead of a whole sequence's gates going out to memory.
    const CHUNK_STEPS: usize = 48;

    /// One direction over one slice of the batch: xs (batch, time, input)
    /// → the (batch, time, hidden) rows of `out`. The output of step t is
    /// also the recurrent input of the next step, read back from `out`.
    ///
    /// # Safety
    ///
    /// `out` must cover batch·time rows of `hidden` floats that no other
    /// thread reads or writes during the call.
    unsafe fn direction_forward(
        xs: &[f32],
        shape: Shape,
        w: &HostDirection,
        reverse: bool,
        out: Out,
    ) {
        let Shape {
            batch,
            time,
            input,
            hidden,
        } = shape;
        let gates = 4 * hidden;
        // Gates of steps [first, first + CHUNK_STEPS), step-major: row
        // (t − first)·batch + b.
        let mut chunk = vec![0f32; CHUNK_STEPS.min(time) * batch * gates];
        // Contiguous copy of the previous step's outputs, for gemm only.
        let mut h = if w.w_hh_packed.is_some() {
            Vec::new()
        } else {
            vec![0f32; batch * hidden]
        };
        let mut c = vec![0f32; batch * hidden];
        let out_seq_stride = time * out.row_stride;
        let chunks = time.div_ceil(CHUNK_STEPS);
        for n in 0..chunks {
            // The reverse direction walks the chunks, and the steps in them,
            // from the end.
            let index = if reverse { chunks - 1 - n } else { n };
            let first = index * CHUNK_STEPS;
            let steps = CHUNK_STEPS.min(time - first);
            for b in 0..batch {
                // SAFETY: rows b·time + first.. of xs (input floats each) are
                // `steps` consecutive rows inside xs; their gates go to rows
                // (t − first)·batch + b of the chunk, `gates` floats each.
                unsafe {
                    project(
                        w,
                        xs.as_ptr().add((b * time + first) * input),
                        input,
                        steps,
                        chunk.as_mut_ptr().add(b * gates),
                        batch * gates,
                    );
                }
            }
            for s in 0..steps {
                let offset = if reverse { steps - 1 - s } else { s };
                let t = first + offset;
                let gates_t = &mut chunk[offset * batch * gates..(offset + 1) * batch * gates];
                let is_first_step = if reverse { t == time - 1 } else { t == 0 };
                if !is_first_step {
                    let previous = if reverse { t + 1 } else { t - 1 };
                    if let Some(packed) = &w.w_hh_packed {
                        // gates(t) += h(previous)·W_hhᵀ; h rows are this
                        // direction's outputs of the previous step.
                        // SAFETY: output rows b·time + previous hold this
                        // direction's `hidden` floats, written last step;
                        // gates_t holds batch rows of `gates` floats.
                        unsafe {
                            packed.accumulate_raw(
                                out.ptr.add(previous * out.row_stride),
                                out_seq_stride,
                                batch,
                                gates_t.as_mut_ptr(),
                                gates,
                                None,
                            );
                        }
                    } else {
                        // SAFETY: gates_t is (batch, gates), h (batch,
                        // hidden) and w_hh_t (hidden, gates), all contiguous.
                        unsafe {
                            gemm_accumulate(
                                (batch, gates, hidden),
                                (gates_t.as_mut_ptr(), gates),
                                (h.as_ptr(), hidden),
                                w.w_hh_t.as_ptr(),
                            );
                        }
                    }
                }
                for (b, g) in gates_t.chunks_exact(gates).enumerate() {
                    let c_b = &mut c[b * hidden..(b + 1) * hidden];
                    // SAFETY: the caller gives this thread output row b·time + t.
                    let h_b = unsafe {
                        std::slice::from_raw_parts_mut(
                            out.ptr.add((b * time + t) * out.row_stride),
                            hidden,
                        )
                    };
                    if w.w_hh_packed.is_some() {
                        let done = crate::models::packed::lstm_cell(g, c_b, h_b);
                        cell(done, g, c_b, h_b);
                    } else {
                        cell(0, g, c_b, h_b);
                        h[b * hidden..(b + 1) * hidden].copy_from_slice(h_b);
                    }
                }
            }
        }
    }

    /// dst row r = bias + x row r · W_ihᵀ for `rows` rows, x rows `input`
    /// floats `x_stride` apart, dst rows `gates` floats `dst_stride` apart.
    ///
    /// # Safety
    ///
    /// Those rows must lie inside their buffers, dst's exclusively ours.
    unsafe fn project(
        w: &HostDirection,
        x: *const f32,
        x_stride: usize,
        rows: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        let gates = w.bias.len();
        // SAFETY (both arms): the caller vouches for the rows.
        if let Some(packed) = &w.w_ih_packed {
            // With a bias the kernel writes every dst element without
            // reading it.
            unsafe { packed.accumulate_raw(x, x_stride, rows, dst, dst_stride, Some(&w.bias)) };
        } else {
            for r in 0..rows {
                unsafe { std::slice::from_raw_parts_mut(dst.add(r * dst_stride), gates) }
                    .copy_from_slice(&w.bias);
            }
            let input = w.w_ih_t.len() / gates;
            unsafe {
                gemm_accumulate(
                    (rows, gates, input),
                    (dst, dst_stride),
                    (x, x_stride),
                    w.w_ih_t.as_ptr(),
                );
            }
        }
    }

    /// One LSTM cell update for one sequence: gates (4·hidden, order i, f,
    /// g, o) → c, h (hidden) in place, for units `first..`.
    #[inline]
    fn cell(first: usize, gates: &[f32], c: &mut [f32], h: &mut [f32]) {
        let hidden = c.len();
        let (i, rest) = gates.split_at(hidden);
        let (f, rest) = rest.split_at(hidden);
        let (g, o) = rest.split_at(hidden);
        for k in first..hidden {
            let c_new = sigmoid(f[k]) * c[k] + sigmoid(i[k]) * tanh(g[k]);
            c[k] = c_new;
            h[k] = sigmoid(o[k]) * tanh(c_new);
        }
    }

    #[inline(always)]
    fn sigmoid(x: f32) -> f32 {
        0.5 + 0.5 * tanh(0.5 * x)
    }

    /// tanh as a 13/6 rational function (Eigen's `ptanh_float` coefficients),
    /// accurate to a few ulp over the clamped range and branch-free, so
    /// loops over it vectorise; libm's scalar `tanhf` does not.
    #[inline(always)]
    pub(super) fn tanh(x: f32) -> f32 {
        // tanh(±7.9053) rounds to ±1 in float32.
        let x = x.clamp(-7.905_311, 7.905_311);
        let x2 = x * x;
        let mut p = -2.760_768_5e-16_f32;
        p = p * x2 + 2.000_188e-13;
        p = p * x2 - 8.604_672e-11;
        p = p * x2 + 5.122_297e-8;
        p = p * x2 + 1.485_722_4e-5;
        p = p * x2 + 6.372_619_3e-4;
        p = p * x2 + 4.893_524_6e-3;
        p *= x;
        let mut q = 1.198_258_4e-6_f32;
        q = q * x2 + 1.185_347_1e-4;
        q = q * x2 + 2.268_434_6e-3;
        q = q * x2 + 4.893_525e-3;
        p / q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The textbook recurrence, one sequence and one step at a time, in f64.
    fn naive(
        xs: &[Vec<Vec<f32>>],
        weights: &std::collections::HashMap<String, Tensor>,
        cfg: &LstmConfig,
    ) -> Vec<Vec<Vec<f64>>> {
        let get = |name: &str| -> Vec<Vec<f64>> {
            let t = weights[name].to_dtype(DType::F64).unwrap();
            match t.rank() {
                1 => vec![t.to_vec1::<f64>().unwrap()],
                _ => t.to_vec2::<f64>().unwrap(),
            }
        };
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let hidden = cfg.hidden_size;
        let mut out = Vec::new();
        for seq in xs {
            let mut layer_in: Vec<Vec<f64>> = seq
                .iter()
                .map(|x| x.iter().map(|&v| v as f64).collect())
                .collect();
            for layer in 0..cfg.num_layers {
                let mut suffixes = vec![format!("l{layer}")];
                if cfg.bidirectional {
                    suffixes.push(format!("l{layer}_reverse"));
                }
                let time = layer_in.len();
                let mut layer_out = vec![Vec::new(); time];
                for (d, suffix) in suffixes.iter().enumerate() {
                    let w_ih = get(&format!("weight_ih_{suffix}"));
                    let w_hh = get(&format!("weight_hh_{suffix}"));
                    let b_ih = &get(&format!("bias_ih_{suffix}"))[0];
                    let b_hh = &get(&format!("bias_hh_{suffix}"))[0];
                    let mut h = vec![0f64; hidden];
                    let mut c = vec![0f64; hidden];
                    for step in 0..time {
                        let t = if d == 1 { time - 1 - step } else { step };
                        let gate = |row: usize| {
                            let x: f64 =
                                w_ih[row].iter().zip(&layer_in[t]).map(|(w, x)| w * x).sum();
                            let r: f64 = w_hh[row].iter().zip(&h).map(|(w, h)| w * h).sum();
                            x + r + b_ih[row] + b_hh[row]
                        };
                        let mut h_new = vec![0f64; hidden];
                        for k in 0..hidden {
                            let i = sig(gate(k));
                            let f = sig(gate(hidden + k));
                            let g = gate(2 * hidden + k).tanh();
                            let o = sig(gate(3 * hidden + k));
                            c[k] = f * c[k] + i * g;
                            h_new[k] = o * c[k].tanh();
                        }
                        h = h_new;
                        layer_out[t].extend_from_slice(&h);
                    }
                }
                layer_in = layer_out;
            }
            out.push(layer_in);
        }
        out
    }

    /// Random weights of PyTorch's names and shapes, scaled like its init.
    fn random_weights(cfg: &LstmConfig, seed: u64) -> std::collections::HashMap<String, Tensor> {
        let dev = Device::Cpu;
        let mut map = std::collections::HashMap::new();
        let dirs = if cfg.bidirectional { 2 } else { 1 };
        let scale = 1.5 / (cfg.hidden_size as f64).sqrt();
        let mut n = 0;
        for layer in 0..cfg.num_layers {
            let input = if layer == 0 {
                cfg.input_size
            } else {
                dirs * cfg.hidden_size
            };
            for d in 0..dirs {
                let suffix = if d == 0 {
                    format!("l{layer}")
                } else {
                    format!("l{layer}_reverse")
                };
                for (name, shape) in [
                    ("weight_ih", vec![4 * cfg.hidden_size, input]),
                    ("weight_hh", vec![4 * cfg.hidden_size, cfg.hidden_size]),
                    ("bias_ih", vec![4 * cfg.hidden_size]),
                    ("bias_hh", vec![4 * cfg.hidden_size]),
                ] {
                    n += 1;
                    let len: usize = shape.iter().product();
                    let values: Vec<f32> = (0..len)
                        .map(|k| {
                            let x = ((k as u64 + 1) * 2_654_435_761 + n * 97 + seed) % 10_007;
                            ((x as f64 / 10_007.0 * 2.0 - 1.0) * scale) as f32
                        })
                        .collect();
                    map.insert(
                        format!("{name}_{suffix}"),
                        Tensor::from_vec(values, shape, &dev).unwrap(),
                    );
                }
            }
        }
        map
    }

    fn inputs(batch: usize, time: usize, input: usize) -> Vec<Vec<Vec<f32>>> {
        (0..batch)
            .map(|b| {
                (0..time)
                    .map(|t| {
                        (0..input)
                            .map(|k| ((b * 31 + t * 7 + k * 3) as f32 * 0.37).sin() * 2.0)
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    fn check(cfg: LstmConfig, batch: usize, time: usize) {
        let weights = random_weights(&cfg, 17);
        let vb = VarBuilder::from_tensors(weights.clone(), DType::F32, &Device::Cpu);
        let lstm = Lstm::new(&cfg, vb).unwrap();
        let xs_nested = inputs(batch, time, cfg.input_size);
        let flat: Vec<f32> = xs_nested.iter().flatten().flatten().copied().collect();
        let xs = Tensor::from_vec(flat, (batch, time, cfg.input_size), &Device::Cpu).unwrap();
        let want = naive(&xs_nested, &weights, &cfg);
        let dirs = if cfg.bidirectional { 2 } else { 1 };
        // The CPU path as it runs where the packed kernels do not (gemm).
        let mut unpacked = Lstm::new(
            &cfg,
            VarBuilder::from_tensors(weights.clone(), DType::F32, &Device::Cpu),
        )
        .unwrap();
        for layer in &mut unpacked.layers {
            for direction in layer.host.iter_mut().flatten() {
                direction.w_ih_packed = None;
                direction.w_hh_packed = None;
            }
        }
        for (name, got) in [
            ("cpu", lstm.forward(&xs).unwrap()),
            ("cpu without packed kernels", unpacked.forward(&xs).unwrap()),
            ("generic", lstm.forward_generic(&xs).unwrap()),
        ] {
            assert_eq!(got.dims(), &[batch, time, dirs * cfg.hidden_size]);
            let got = got.to_vec3::<f32>().unwrap();
            let mut max = 0f64;
            for b in 0..batch {
                for t in 0..time {
                    for k in 0..dirs * cfg.hidden_size {
                        max = max.max((got[b][t][k] as f64 - want[b][t][k]).abs());
                    }
                }
            }
            assert!(max < 2e-6, "{name} {cfg:?}: max abs error {max:e}");
        }
        let last = lstm.forward_last(&xs).unwrap().to_vec2::<f32>().unwrap();
        for b in 0..batch {
            for k in 0..dirs * cfg.hidden_size {
                assert!((last[b][k] as f64 - want[b][time - 1][k]).abs() < 2e-6);
            }
        }
    }

    #[test]
    fn bidirectional_matches_naive_recurrence() {
        let cfg = LstmConfig {
            input_size: 7,
            hidden_size: 12,
            num_layers: 3,
            bidirectional: true,
        };
        check(cfg, 5, 9);
    }

    #[test]
    fn unidirectional_matches_naive_recurrence() {
        let cfg = LstmConfig {
            input_size: 10,
            hidden_size: 16,
            num_layers: 2,
            bidirectional: false,
        };
        check(cfg, 3, 11);
    }

    #[test]
    fn batches_beyond_one_kernel_block() {
        // 13 sequences: two full blocks of the recurrent kernel and a tail.
        let cfg = LstmConfig {
            input_size: 5,
            hidden_size: 8,
            num_layers: 2,
            bidirectional: true,
        };
        check(cfg, 13, 6);
    }

    #[test]
    fn sequences_spanning_several_projection_chunks() {
        // 30 steps: two full chunks of input projections and a partial one,
        // walked from either end; 24: chunks that end exactly on the last step.
        for (bidirectional, time) in [(true, 30), (false, 30), (true, 24)] {
            let cfg = LstmConfig {
                input_size: 6,
                hidden_size: 16,
                num_layers: 2,
                bidirectional,
            };
            check(cfg, 7, time);
        }
    }

    #[test]
    fn single_sequence_single_step() {
        let cfg = LstmConfig {
            input_size: 4,
            hidden_size: 8,
            num_layers: 1,
            bidirectional: true,
        };
        check(cfg, 1, 1);
    }

    #[test]
    fn fast_tanh_is_accurate() {
        let mut max = 0f64;
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4;
            max = max.max((cpu::tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        // A handful of float32 ulps.
        assert!(max < 5e-7, "max abs error {max:e}");
        assert_eq!(cpu::tanh(50.0), 1.0);
        assert_eq!(cpu::tanh(-50.0), -1.0);
        assert!(cpu::tanh(f32::NAN).is_nan());
    }
}
