// One LSTM time step for every (direction, sequence) row at once, launched
// by the whole-layer op in lstm_cuda.rs after each step's recurrent product:
// the gate pre-activations are the input projection of this step plus that
// product, in PyTorch's gate order (input, forget, cell, output). One kernel
// replaces the nine elementwise kernels a step otherwise launches, which
// dominate the recurrence on a GPU (each is tiny and launch-bound).

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// Element j of row `row`: the next cell state from the previous one, and h.
__device__ __forceinline__ void cell(
    const float* __restrict__ xw, const float* __restrict__ hw,
    unsigned int row, unsigned int j, unsigned int hidden,
    float c_prev, float* c_next, float* h) {
  const unsigned int g = row * 4 * hidden + j;
  const float i = sigmoid(xw[g] + hw[g]);
  const float f = sigmoid(xw[g + hidden] + hw[g + hidden]);
  const float z = tanhf(xw[g + 2 * hidden] + hw[g + 2 * hidden]);
  const float o = sigmoid(xw[g + 3 * hidden] + hw[g + 3 * hidden]);
  *c_next = f * c_prev + i * z;
  *h = o * tanhf(*c_next);
}

// The cell state is updated in place and h is written straight into the
// layer's output at this step, so a step allocates nothing.
//
// xw, hw: rows × 4·hidden; c: rows × hidden (in and out); h: rows × hidden.
extern "C" __global__ void diarist_lstm_step_f32(
    const float* __restrict__ xw,
    const float* __restrict__ hw,
    float* __restrict__ c,
    float* __restrict__ h,
    const unsigned int rows,
    const unsigned int hidden) {
  const unsigned int n = rows * hidden;
  for (unsigned int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += blockDim.x * gridDim.x) {
    const unsigned int row = k / hidden;
    float c_next;
    cell(xw, hw, row, k - row * hidden, hidden, c[k], &c_next, &h[k]);
    c[k] = c_next;
  }
}
