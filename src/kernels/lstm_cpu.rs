//! The fused float32 LSTM recurrence on the CPU, one layer at a time. Per
//! step it costs one small product (the packed micro-kernel, or gemm on
//! CPUs without one) and one pass over the gates; a candle op per gate per
//! step would allocate a fresh tensor every time, which dominates at these
//! sizes. One worker runs one direction over a slice of the batch for all
//! time steps, so workers never wait on each other: no per-step
//! synchronisation at all.

use rayon::prelude::*;

use super::packed::{Packed, gemm_accumulate, lstm_cell};

/// One direction of one layer, as plain row-major f32 (PyTorch's gate
/// order i, f, g, o), with the packed copies the micro-kernels read.
pub(crate) struct LstmDirection {
    /// (input, 4·hidden)
    w_ih_t: Vec<f32>,
    /// (hidden, 4·hidden)
    w_hh_t: Vec<f32>,
    /// W_ihᵀ and W_hhᵀ in the packed kernel's layout, when it runs here.
    w_ih_packed: Option<Packed>,
    w_hh_packed: Option<Packed>,
    /// (4·hidden): bias_ih + bias_hh
    bias: Vec<f32>,
}

impl LstmDirection {
    /// `w_ih_t` (input, 4·hidden), `w_hh_t` (hidden, 4·hidden) and `bias`
    /// (4·hidden, the sum of PyTorch's two biases), row-major.
    pub(crate) fn new(
        w_ih_t: Vec<f32>,
        w_hh_t: Vec<f32>,
        bias: Vec<f32>,
        input: usize,
        hidden: usize,
    ) -> Self {
        let gates = 4 * hidden;
        Self {
            w_ih_packed: Packed::new(&w_ih_t, input, gates),
            w_hh_packed: Packed::new(&w_hh_t, hidden, gates),
            w_ih_t,
            w_hh_t,
            bias,
        }
    }

    /// The path CPUs without the packed kernels take (gemm), for tests.
    #[cfg(test)]
    pub(crate) fn without_packed(mut self) -> Self {
        self.w_ih_packed = None;
        self.w_hh_packed = None;
        self
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub batch: usize,
    pub time: usize,
    pub input: usize,
    pub hidden: usize,
}

/// One layer, every direction: xs (batch, time, input) row-major →
/// (batch, time, directions·hidden), the backward direction (the second,
/// when there are two) reading time from the end.
pub(crate) fn layer_forward(xs: &[f32], shape: Shape, directions: &[LstmDirection]) -> Vec<f32> {
    let Shape {
        batch,
        time,
        input,
        hidden,
    } = shape;
    let dirs = directions.len();
    let threads = rayon::current_num_threads().max(1);
    // Split the batch only as far as needed to give every thread of the
    // compute pool work.
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
    let run = move |&(d, direction, start, len): &(usize, &LstmDirection, usize, usize)| {
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
        // the parallel loop.
        unsafe { direction_forward(xs, shape, direction, d == 1, out) };
    };
    jobs.par_iter().for_each(run);
    ys
}

/// A pointer that may cross into the compute pool's threads, which write
/// disjoint parts of the buffer it points into.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: see `layer_forward`: each job writes its own columns and
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
unsafe fn direction_forward(xs: &[f32], shape: Shape, w: &LstmDirection, reverse: bool, out: Out) {
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
                    let done = lstm_cell(g, c_b, h_b);
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
    w: &LstmDirection,
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
fn tanh(x: f32) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_is_accurate() {
        let mut max = 0f64;
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4;
            max = max.max((tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        // A handful of float32 ulps.
        assert!(max < 5e-7, "max abs error {max:e}");
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }
}
