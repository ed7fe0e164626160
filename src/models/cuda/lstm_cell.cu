// One LSTM time step for every (direction, sequence) row at once: the gate
// pre-activations are the input projection of this step plus the recurrent
// product, in PyTorch's gate order (input, forget, cell, output). Replaces
// the nine elementwise kernels a step otherwise launches, which dominate
// the recurrence on a GPU (each is tiny and launch-bound).
//
// xw, hw: rows × 4·hidden; c: rows × hidden; out: h then c, 2 × rows × hidden.

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

extern "C" __global__ void diarist_lstm_cell_f32(
    const float* __restrict__ xw,
    const float* __restrict__ hw,
    const float* __restrict__ c,
    float* __restrict__ out,
    const unsigned int rows,
    const unsigned int hidden) {
  const unsigned int n = rows * hidden;
  for (unsigned int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += blockDim.x * gridDim.x) {
    const unsigned int row = k / hidden;
    cell(xw, hw, row, k - row * hidden, hidden, c[k], &out[n + k], &out[k]);
  }
}

// The same step for the whole-recurrence op: the cell state is updated in
// place and h is written straight into the layer's output at this step, so
// a step is one matrix product and this kernel, with nothing to allocate.
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
