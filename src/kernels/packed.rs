//! Products with a fixed weight matrix, x·Wᵀ added in place to rows of a
//! destination: the LSTMs' input projections and recurrent steps, and the
//! SincNet convolutions (as products with overlapping rows of the input). gemm
//! packs and re-reads the weights several times per call; here they
//! are packed once at load into panels of 16 gate columns that stay
//! in L1 while every row goes through them, so each call reads the
//! weights from L2/L3 once (AVX2 + FMA, or AVX-512 where the CPU has it;
//! other CPUs keep gemm).

/// Gate columns per panel: two AVX registers.
const PANEL: usize = 16;
/// Sequences per AVX2 micro-kernel call: 6 × 2 accumulators + 2 weights
/// fit the 16 AVX registers.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 6;
/// Sequences per AVX-512 micro-kernel call: 12 rows × 2 panels of one
/// register each, plus the 2 weights, fit the 32 registers.
#[cfg(target_arch = "x86_64")]
const ROWS_512: usize = 12;

/// Which micro-kernel runs the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub enum Kernel {
    Avx2,
    Avx512,
}

impl Kernel {
    /// The widest kernel this CPU runs; `DIARIST_NO_AVX512` set keeps AVX2
    /// (to compare the two on one machine). `None`: neither runs here.
    /// Decided once per process.
    pub fn detect() -> Option<Self> {
        static KERNEL: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
        *KERNEL.get_or_init(Self::probe)
    }

    fn probe() -> Option<Self> {
        if !available() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f")
            && std::env::var_os("DIARIST_NO_AVX512").is_none()
        {
            return Some(Self::Avx512);
        }
        Some(Self::Avx2)
    }
}

/// A weight matrix Wᵀ (depth, gates) as `gates / 16` panels of
/// (depth, 16), each row-major, starting on a 64-byte boundary (a panel row
/// is one cache line). Only the x86-64 kernels read the panels; elsewhere
/// `new` never builds one.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct Packed {
    data: Vec<f32>,
    offset: usize,
    depth: usize,
    gates: usize,
    kernel: Kernel,
}

impl Packed {
    /// `None` where the kernel does not run (no AVX2/FMA, or gates
    /// not a multiple of 16); the caller then uses gemm.
    pub fn new(w_t: &[f32], depth: usize, gates: usize) -> Option<Self> {
        Self::with_kernel(w_t, depth, gates, Kernel::detect()?)
    }

    /// `new` with a chosen kernel, which the caller knows runs here.
    fn with_kernel(w_t: &[f32], depth: usize, gates: usize, kernel: Kernel) -> Option<Self> {
        if !gates.is_multiple_of(PANEL) || w_t.len() != depth * gates {
            return None;
        }
        let mut data = vec![0f32; depth * gates + 16];
        // The kernels load panels with aligned loads: the packed data must
        // start on a 64-byte line inside the 16 spare floats, or not at all
        // (`align_offset` may answer usize::MAX; gemm then runs instead).
        let offset = data.as_ptr().align_offset(64);
        if offset >= 16 {
            return None;
        }
        for p in 0..gates / PANEL {
            for k in 0..depth {
                let dst = offset + (p * depth + k) * PANEL;
                data[dst..dst + PANEL].copy_from_slice(&w_t[k * gates + p * PANEL..][..PANEL]);
            }
        }
        Some(Self {
            data,
            offset,
            depth,
            gates,
            kernel,
        })
    }

    #[cfg(test)]
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// dst[b·dst_stride + j] (+)= Σ_k x[b·x_stride + k]·Wᵀ[k, j] for
    /// b < rows, j < gates: added to dst, or with `bias` (gates
    /// long) written as bias + product without reading dst.
    ///
    /// # Safety
    ///
    /// Rows b < rows of x (depth floats at x + b·x_stride) must be
    /// readable and rows of dst (gates floats at dst + b·dst_stride)
    /// writable, and no other thread may write the former or touch
    /// the latter during the call.
    pub unsafe fn accumulate_raw(
        &self,
        x: *const f32,
        x_stride: usize,
        rows: usize,
        dst: *mut f32,
        dst_stride: usize,
        bias: Option<&[f32]>,
    ) {
        if let Some(bias) = bias {
            assert_eq!(bias.len(), self.gates);
        }
        #[cfg(target_arch = "x86_64")]
        {
            let panels = &self.data[self.offset..];
            let (depth, gates) = (self.depth, self.gates);
            // SAFETY: `new` only picks a kernel the CPU runs; the
            // caller vouches for the rows, and the panels cover
            // depth × gates floats.
            unsafe {
                match self.kernel {
                    Kernel::Avx2 => avx2::accumulate(
                        panels,
                        depth,
                        gates,
                        (x, x_stride),
                        rows,
                        (dst, dst_stride),
                        bias,
                    ),
                    Kernel::Avx512 => avx512::accumulate(
                        panels,
                        depth,
                        gates,
                        (x, x_stride),
                        rows,
                        (dst, dst_stride),
                        bias,
                    ),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "no packed kernel on this architecture: {x:?} {x_stride} {rows} {dst:?} {dst_stride} {bias:?}"
        );
    }
}

/// The LSTM cell update (gates in the order i, f, g, o → c, h in place)
/// for the first units, 16 or 8 at a time (the kernel's width); returns
/// how many it did: none where this CPU has no packed kernel, and the
/// caller updates the rest.
pub fn lstm_cell(gates: &[f32], c: &mut [f32], h: &mut [f32]) -> usize {
    let hidden = c.len();
    assert!(gates.len() == 4 * hidden && h.len() == hidden);
    #[cfg(target_arch = "x86_64")]
    match Kernel::detect() {
        Some(Kernel::Avx512) => {
            let vectorised = hidden / 16 * 16;
            // SAFETY: `detect` found AVX-512F on this CPU; the assert
            // bounds every access below `vectorised`.
            unsafe { avx512::cell(gates, c, h, vectorised) };
            vectorised
        }
        Some(Kernel::Avx2) => {
            let vectorised = hidden / 8 * 8;
            // SAFETY: `detect` found AVX2 and FMA on this CPU; as above.
            unsafe { avx2::cell(gates, c, h, vectorised) };
            vectorised
        }
        None => 0,
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// dst = bias + X·W, X's rows read with a stride of their own, so they
/// may overlap: a convolution's input read as its im2col matrix. Through
/// the packed kernel where it runs, gemm elsewhere.
pub struct RowProduct {
    /// (depth, gates) row-major
    w: Vec<f32>,
    /// (gates)
    bias: Vec<f32>,
    packed: Option<Packed>,
    pub depth: usize,
    pub gates: usize,
}

impl RowProduct {
    /// `w`: (depth, gates) row-major; `bias`: (gates).
    pub fn new(w: Vec<f32>, bias: Vec<f32>, depth: usize, gates: usize) -> Self {
        assert_eq!(w.len(), depth * gates);
        assert_eq!(bias.len(), gates);
        Self {
            packed: Packed::new(&w, depth, gates),
            w,
            bias,
            depth,
            gates,
        }
    }

    /// dst (rows, gates) row-major: row r = bias + Σ_k x[r·x_stride + k]·w[k, ·].
    pub fn apply(&self, x: &[f32], x_stride: usize, rows: usize, dst: &mut [f32]) {
        if rows == 0 {
            return;
        }
        assert!((rows - 1) * x_stride + self.depth <= x.len());
        assert!(dst.len() >= rows * self.gates);
        match &self.packed {
            Some(packed) => {
                // Blocks of rows small enough for their inputs to stay in L2
                // while every panel of W goes through them.
                const BLOCK: usize = 48;
                for first in (0..rows).step_by(BLOCK) {
                    // SAFETY: the asserts bound rows [first, first + n) of x
                    // and dst, and the borrows make them exclusive.
                    unsafe {
                        packed.accumulate_raw(
                            x.as_ptr().add(first * x_stride),
                            x_stride,
                            BLOCK.min(rows - first),
                            dst.as_mut_ptr().add(first * self.gates),
                            self.gates,
                            Some(&self.bias),
                        );
                    }
                }
            }
            None => {
                for row in dst[..rows * self.gates].chunks_exact_mut(self.gates) {
                    row.copy_from_slice(&self.bias);
                }
                // SAFETY: lhs element (r, k) is x[r·x_stride + k], inside x by
                // the assert; rhs is w (depth, gates) and dst (rows, gates),
                // both row-major and contiguous.
                unsafe {
                    gemm_accumulate(
                        (rows, self.gates, self.depth),
                        (dst.as_mut_ptr(), self.gates),
                        (x.as_ptr(), x_stride),
                        self.w.as_ptr(),
                    );
                }
            }
        }
    }
}

/// Whether the kernels run on this CPU.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The LSTM cell update with its sigmoid and tanh, written once for a
/// register width: the intrinsics that differ by width are passed in.
/// tanh is `lstm::cpu::tanh` with the division as a reciprocal estimate and
/// one Newton step (≈ 1 ulp; Zen 1's vdivps is several times slower than
/// the whole polynomial).
#[cfg(target_arch = "x86_64")]
macro_rules! lstm_cell_kernel {
    (
        $feature:literal, $v:ty, $lanes:literal,
        $load:ident, $store:ident, $set1:ident, $mul:ident, $fmadd:ident,
        $fnmadd:ident, $min:ident, $max:ident, $rcp:ident
    ) => {
        /// `lstm_cell` for units `[0, units)`, units a multiple of the
        /// register width.
        #[target_feature(enable = $feature)]
        pub(super) unsafe fn cell(gates: &[f32], c: &mut [f32], h: &mut [f32], units: usize) {
            let hidden = c.len();
            let g = gates.as_ptr();
            // SAFETY: the caller checked gates = 4·hidden, h = hidden and
            // units ≤ hidden, a multiple of the width.
            unsafe {
                for k in (0..units).step_by($lanes) {
                    let i = sigmoid($load(g.add(k)));
                    let f = sigmoid($load(g.add(hidden + k)));
                    let gg = tanh($load(g.add(2 * hidden + k)));
                    let o = sigmoid($load(g.add(3 * hidden + k)));
                    let c_old = $load(c.as_ptr().add(k));
                    let c_new = $fmadd(f, c_old, $mul(i, gg));
                    $store(c.as_mut_ptr().add(k), c_new);
                    $store(h.as_mut_ptr().add(k), $mul(o, tanh(c_new)));
                }
            }
        }

        #[target_feature(enable = $feature)]
        #[inline]
        fn sigmoid(x: $v) -> $v {
            let half = $set1(0.5);
            $fmadd(half, tanh($mul(half, x)), half)
        }

        #[target_feature(enable = $feature)]
        #[inline]
        fn tanh(x: $v) -> $v {
            let x = $min($max(x, $set1(-7.905_311)), $set1(7.905_311));
            let x2 = $mul(x, x);
            let mut p = $set1(-2.760_768_5e-16);
            for coefficient in [
                2.000_188e-13,
                -8.604_672e-11,
                5.122_297e-8,
                1.485_722_4e-5,
                6.372_619_3e-4,
                4.893_524_6e-3,
            ] {
                p = $fmadd(p, x2, $set1(coefficient));
            }
            let p = $mul(p, x);
            let mut q = $set1(1.198_258_4e-6);
            for coefficient in [1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3] {
                q = $fmadd(q, x2, $set1(coefficient));
            }
            let r = $rcp(q);
            // r·(2 − q·r)
            let r = $mul(r, $fnmadd(q, r, $set1(2.0)));
            $mul(p, r)
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{PANEL, ROWS};
    use std::arch::x86_64::*;

    lstm_cell_kernel!(
        "avx2,fma",
        __m256,
        8,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_mul_ps,
        _mm256_fmadd_ps,
        _mm256_fnmadd_ps,
        _mm256_min_ps,
        _mm256_max_ps,
        _mm256_rcp_ps
    );

    /// See `Packed::accumulate_raw`; `packed` is the aligned panels.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn accumulate(
        packed: &[f32],
        depth: usize,
        gates: usize,
        (x, x_stride): (*const f32, usize),
        rows: usize,
        (dst, dst_stride): (*mut f32, usize),
        bias: Option<&[f32]>,
    ) {
        for p in 0..gates / PANEL {
            // SAFETY (whole body): the caller vouches for the rows;
            // panel p is packed[p·depth·16..][..depth·16] and its
            // bias bias[16·p..][..16].
            unsafe {
                let panel = packed.as_ptr().add(p * depth * PANEL);
                let bias = bias.map(|b| b.as_ptr().add(p * PANEL));
                let dst = dst.add(p * PANEL);
                let mut b = 0;
                while b + ROWS <= rows {
                    let (xb, db) = (x.add(b * x_stride), dst.add(b * dst_stride));
                    block::<ROWS>(panel, depth, (xb, x_stride), (db, dst_stride), bias);
                    b += ROWS;
                }
                let (xb, db) = (x.add(b * x_stride), dst.add(b * dst_stride));
                let (xb, db) = ((xb, x_stride), (db, dst_stride));
                match rows - b {
                    1 => block::<1>(panel, depth, xb, db, bias),
                    2 => block::<2>(panel, depth, xb, db, bias),
                    3 => block::<3>(panel, depth, xb, db, bias),
                    4 => block::<4>(panel, depth, xb, db, bias),
                    5 => block::<5>(panel, depth, xb, db, bias),
                    _ => {}
                }
            }
        }
    }

    /// R rows × one panel: 2·R accumulators in registers over the
    /// whole depth, starting from dst (or from the bias).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const R: usize>(
        panel: *const f32,
        depth: usize,
        (x, x_stride): (*const f32, usize),
        (dst, dst_stride): (*mut f32, usize),
        bias: Option<*const f32>,
    ) {
        // SAFETY: see `accumulate`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for (r, a) in acc.iter_mut().enumerate() {
                let from = bias.unwrap_or(dst.add(r * dst_stride));
                a[0] = _mm256_loadu_ps(from);
                a[1] = _mm256_loadu_ps(from.add(8));
            }
            for k in 0..depth {
                let w0 = _mm256_load_ps(panel.add(k * PANEL));
                let w1 = _mm256_load_ps(panel.add(k * PANEL + 8));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm256_broadcast_ss(&*x.add(r * x_stride + k));
                    a[0] = _mm256_fmadd_ps(v, w0, a[0]);
                    a[1] = _mm256_fmadd_ps(v, w1, a[1]);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(dst.add(r * dst_stride), a[0]);
                _mm256_storeu_ps(dst.add(r * dst_stride + 8), a[1]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{PANEL, ROWS_512 as ROWS};
    use std::arch::x86_64::*;

    lstm_cell_kernel!(
        "avx512f",
        __m512,
        16,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_mul_ps,
        _mm512_fmadd_ps,
        _mm512_fnmadd_ps,
        _mm512_min_ps,
        _mm512_max_ps,
        _mm512_rcp14_ps
    );

    /// See `Packed::accumulate_raw`; `packed` is the aligned panels.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn accumulate(
        packed: &[f32],
        depth: usize,
        gates: usize,
        (x, x_stride): (*const f32, usize),
        rows: usize,
        (dst, dst_stride): (*mut f32, usize),
        bias: Option<&[f32]>,
    ) {
        let panels = gates / PANEL;
        let panel_len = depth * PANEL;
        // Two panels at a time: each broadcast input feeds two FMAs, so the
        // loads (one per row and panel pair) stay under the FMA count.
        for p in (0..panels).step_by(2) {
            // SAFETY (whole body): as in the AVX2 kernel; with `pair`,
            // panel p + 1 exists and follows panel p.
            unsafe {
                let pair = p + 1 < panels;
                let panel = packed.as_ptr().add(p * panel_len);
                let bias = bias.map(|b| b.as_ptr().add(p * PANEL));
                let dst = dst.add(p * PANEL);
                let mut b = 0;
                while b + ROWS <= rows {
                    let (xb, db) = (
                        (x.add(b * x_stride), x_stride),
                        (dst.add(b * dst_stride), dst_stride),
                    );
                    if pair {
                        block2::<ROWS>(panel, panel_len, depth, xb, db, bias);
                    } else {
                        block::<ROWS>(panel, depth, xb, db, bias);
                    }
                    b += ROWS;
                }
                let (xb, db) = (
                    (x.add(b * x_stride), x_stride),
                    (dst.add(b * dst_stride), dst_stride),
                );
                macro_rules! tail {
                    ($($r:literal)*) => {
                        match rows - b {
                            $($r => if pair {
                                block2::<$r>(panel, panel_len, depth, xb, db, bias)
                            } else {
                                block::<$r>(panel, depth, xb, db, bias)
                            },)*
                            _ => {}
                        }
                    };
                }
                tail!(1 2 3 4 5 6 7 8 9 10 11);
            }
        }
    }

    /// R rows × two adjacent panels, `panel_len` floats apart: two
    /// registers per row over the whole depth, from dst (or the bias).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block2<const R: usize>(
        panel: *const f32,
        panel_len: usize,
        depth: usize,
        (x, x_stride): (*const f32, usize),
        (dst, dst_stride): (*mut f32, usize),
        bias: Option<*const f32>,
    ) {
        // SAFETY: see `accumulate`; panel rows are 64-byte aligned.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            for (r, a) in acc.iter_mut().enumerate() {
                let from = bias.unwrap_or(dst.add(r * dst_stride));
                a[0] = _mm512_loadu_ps(from);
                a[1] = _mm512_loadu_ps(from.add(PANEL));
            }
            let second = panel.add(panel_len);
            for k in 0..depth {
                let w0 = _mm512_load_ps(panel.add(k * PANEL));
                let w1 = _mm512_load_ps(second.add(k * PANEL));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*x.add(r * x_stride + k));
                    a[0] = _mm512_fmadd_ps(v, w0, a[0]);
                    a[1] = _mm512_fmadd_ps(v, w1, a[1]);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(dst.add(r * dst_stride), a[0]);
                _mm512_storeu_ps(dst.add(r * dst_stride + PANEL), a[1]);
            }
        }
    }

    /// R rows × one panel (one register each) over the whole depth,
    /// starting from dst (or from the bias).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const R: usize>(
        panel: *const f32,
        depth: usize,
        (x, x_stride): (*const f32, usize),
        (dst, dst_stride): (*mut f32, usize),
        bias: Option<*const f32>,
    ) {
        // SAFETY: see `accumulate`; panel rows are 64-byte aligned.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); R];
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(bias.unwrap_or(dst.add(r * dst_stride)));
            }
            for k in 0..depth {
                let w = _mm512_load_ps(panel.add(k * PANEL));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*x.add(r * x_stride + k));
                    *a = _mm512_fmadd_ps(v, w, *a);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(dst.add(r * dst_stride), *a);
            }
        }
    }
}

/// `dst += lhs · rhs` on this thread through gemm, for row-major matrices
/// of `(m, n, k)`: dst (m × n, rows `dst.1` apart), lhs (m × k, rows `lhs.1`
/// apart), rhs (k × n, contiguous). The fallback wherever the packed kernel
/// does not run.
///
/// # Safety
/// Every row named lies inside its buffer: `dst.0[r·dst.1 .. r·dst.1 + n]`
/// and `lhs.0[r·lhs.1 .. r·lhs.1 + k]` for r < m, and `rhs[.. k·n]`.
pub(crate) unsafe fn gemm_accumulate(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, usize),
    lhs: (*const f32, usize),
    rhs: *const f32,
) {
    // SAFETY: the caller's extents are exactly the strides given here.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            1,
            dst.1 as isize,
            true,
            lhs.0,
            1,
            lhs.1 as isize,
            rhs,
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dst = bias + X·W by the textbook loop, X's rows overlapping.
    fn naive(w: &[f32], bias: &[f32], x: &[f32], x_stride: usize, rows: usize) -> Vec<f32> {
        let (depth, gates) = (w.len() / bias.len(), bias.len());
        let mut out = Vec::with_capacity(rows * gates);
        for r in 0..rows {
            for j in 0..gates {
                let dot: f64 = (0..depth)
                    .map(|k| x[r * x_stride + k] as f64 * w[k * gates + j] as f64)
                    .sum();
                out.push((bias[j] as f64 + dot) as f32);
            }
        }
        out
    }

    #[test]
    fn row_products_match_the_textbook_loop() {
        let value = |i: usize, seed: usize| ((i * 7_919 + seed) % 1_000) as f32 / 500.0 - 1.0;
        // Overlapping rows (stride < depth) like a convolution, blocks of 48
        // rows plus tails of several lengths for each kernel.
        for (depth, gates, x_stride, rows) in [
            (25, 32, 10, 107),
            (7, 16, 7, 5),
            (40, 48, 3, 53),
            (9, 16, 9, 30),
        ] {
            let w: Vec<f32> = (0..depth * gates).map(|i| value(i, 1)).collect();
            let bias: Vec<f32> = (0..gates).map(|i| value(i, 2)).collect();
            let x: Vec<f32> = (0..(rows - 1) * x_stride + depth)
                .map(|i| value(i, 3))
                .collect();
            let want = naive(&w, &bias, &x, x_stride, rows);
            let mut product = RowProduct::new(w, bias, depth, gates);
            assert_eq!(product.packed.is_some(), available());
            // Every kernel this CPU runs, then gemm.
            let mut kernels: Vec<Option<Kernel>> = Vec::new();
            if available() {
                kernels.push(Some(Kernel::Avx2));
            }
            #[cfg(target_arch = "x86_64")]
            if available() && std::is_x86_feature_detected!("avx512f") {
                kernels.push(Some(Kernel::Avx512));
            }
            kernels.push(None);
            for kernel in kernels {
                product.packed =
                    kernel.and_then(|k| Packed::with_kernel(&product.w, depth, gates, k));
                assert_eq!(product.packed.as_ref().map(Packed::kernel), kernel);
                let mut got = vec![f32::NAN; rows * gates];
                product.apply(&x, x_stride, rows, &mut got);
                let max = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(max < 1e-5, "{kernel:?}, depth {depth}: {max:e}");
            }
        }
    }
}
