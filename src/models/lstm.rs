//! A multi-layer (optionally bidirectional) LSTM with PyTorch's weight layout
//! (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, and
//! `_reverse` for the backward direction; gates ordered i, f, g, o; h0 = c0 = 0).
//!
//! Two implementations compute the same function:
//! * the generic one, candle tensor ops only, runs on every device. The input
//!   projection x·W_ihᵀ of every step of every sequence and of both directions
//!   is one large matmul; each step then costs one batched matmul h·W_hhᵀ for
//!   both directions and a handful of element-wise ops;
//! * on the CPU (float32), the fused loop of `kernels::lstm_cpu`,
//!   whose per-step cost is one small product and one pass over the gates,
//!   with the directions (or, for a unidirectional LSTM, slices of the
//!   batch) on separate threads. On CUDA the generic path's recurrence is
//!   one op for the whole layer (`kernels::lstm_cuda`).

use candle_core::{D, DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::lstm_cpu::{self, LstmDirection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
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
    host: Option<Vec<LstmDirection>>,
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
                directions.push(LstmDirection::new(
                    host(w_ih_t.narrow(1, d * gates, gates)?)?,
                    host(w_hh_t.i(d)?)?,
                    host(bias.narrow(0, d * gates, gates)?)?,
                    input,
                    hidden,
                ));
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
            return crate::kernels::lstm_cuda::recurrence(xw, &self.w_hh_t);
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
    fn forward_host(&self, host: &[LstmDirection], xs: &Tensor) -> Result<Tensor> {
        let (batch, time, input) = xs.dims3()?;
        let xs_host = xs.flatten_all()?.to_vec1::<f32>()?;
        let shape = lstm_cpu::Shape {
            batch,
            time,
            input,
            hidden: self.hidden(),
        };
        let ys = lstm_cpu::layer_forward(&xs_host, shape, host);
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
            layer.host = layer.host.take().map(|directions| {
                directions
                    .into_iter()
                    .map(LstmDirection::without_packed)
                    .collect()
            });
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
}
