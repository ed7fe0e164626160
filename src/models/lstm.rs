//! A multi-layer (optionally bidirectional) LSTM with PyTorch's weight layout
//! (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, and
//! `_reverse` for the backward direction; gates ordered i, f, g, o).
//!
//! The input projection x·W_ihᵀ of every time step of every sequence is one
//! large matmul; only the small recurrent product h·W_hhᵀ runs step by step.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
}

struct Direction {
    /// (input, 4·hidden): transposed once at load.
    w_ih_t: Tensor,
    /// (hidden, 4·hidden)
    w_hh_t: Tensor,
    /// (4·hidden): bias_ih + bias_hh
    bias: Tensor,
}

impl Direction {
    fn new(vb: &VarBuilder, input: usize, hidden: usize, suffix: &str) -> Result<Self> {
        let w_ih = vb.get((4 * hidden, input), &format!("weight_ih_{suffix}"))?;
        let w_hh = vb.get((4 * hidden, hidden), &format!("weight_hh_{suffix}"))?;
        let b_ih = vb.get(4 * hidden, &format!("bias_ih_{suffix}"))?;
        let b_hh = vb.get(4 * hidden, &format!("bias_hh_{suffix}"))?;
        Ok(Self {
            w_ih_t: w_ih.t()?.contiguous()?,
            w_hh_t: w_hh.t()?.contiguous()?,
            bias: (b_ih + b_hh)?,
        })
    }

    /// xs: (batch, time, input) → (batch, time, hidden)
    fn forward(&self, xs: &Tensor, reverse: bool) -> Result<Tensor> {
        let (batch, time, input) = xs.dims3()?;
        let hidden = self.w_hh_t.dim(0)?;
        let xw = xs
            .reshape((batch * time, input))?
            .matmul(&self.w_ih_t)?
            .broadcast_add(&self.bias)?
            .reshape((batch, time, 4 * hidden))?; // (batch, time, 4·hidden)
        let mut h = Tensor::zeros((batch, hidden), xs.dtype(), xs.device())?;
        let mut c = h.clone();
        let mut outputs = vec![None; time];
        for step in 0..time {
            let t = if reverse { time - 1 - step } else { step };
            let gates = (xw.narrow(1, t, 1)?.squeeze(1)? + h.matmul(&self.w_hh_t)?)?;
            let ifo = candle_nn::ops::sigmoid(&gates)?;
            let i = ifo.narrow(D::Minus1, 0, hidden)?;
            let f = ifo.narrow(D::Minus1, hidden, hidden)?;
            let o = ifo.narrow(D::Minus1, 3 * hidden, hidden)?;
            let g = gates.narrow(D::Minus1, 2 * hidden, hidden)?.tanh()?;
            c = ((f * &c)? + (i * g)?)?;
            h = (o * c.tanh()?)?;
            outputs[t] = Some(h.clone());
        }
        let outputs: Vec<Tensor> = outputs.into_iter().flatten().collect();
        Tensor::stack(&outputs, 1) // (batch, time, hidden)
    }
}

pub struct Lstm {
    layers: Vec<(Direction, Option<Direction>)>,
}

impl Lstm {
    pub fn new(cfg: &LstmConfig, vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for layer in 0..cfg.num_layers {
            let input = match (layer, cfg.bidirectional) {
                (0, _) => cfg.input_size,
                (_, true) => 2 * cfg.hidden_size,
                (_, false) => cfg.hidden_size,
            };
            let suffix = format!("l{layer}");
            let forward = Direction::new(&vb, input, cfg.hidden_size, &suffix)?;
            let backward = if cfg.bidirectional {
                Some(Direction::new(
                    &vb,
                    input,
                    cfg.hidden_size,
                    &format!("{suffix}_reverse"),
                )?)
            } else {
                None
            };
            layers.push((forward, backward));
        }
        Ok(Self { layers })
    }
}

impl Module for Lstm {
    /// xs: (batch, time, input) → (batch, time, hidden · directions)
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (forward, backward) in &self.layers {
            let fwd = forward.forward(&xs, false)?;
            xs = match backward {
                Some(backward) => Tensor::cat(&[fwd, backward.forward(&xs, true)?], D::Minus1)?,
                None => fwd,
            };
        }
        Ok(xs)
    }
}
