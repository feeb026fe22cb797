/**
 * The kernel interface of the GPT trainer, in the style of llm.c: one forward and one backward function
 * per layer, all on flat row-major arrays. Two implementations exist and must agree:
 *   - `reference.ts`: plain TypeScript, slow and obvious, generic over Float32Array/Float64Array
 *     (float64 is used for finite-difference gradient checks);
 *   - `native.ts`: the C++ addon (AVX-512, 2 threads), Float32Array only.
 *
 * Conventions
 *   - BT = B*T rows; C = channels; OC = output channels; NH = heads; V = vocabulary size.
 *   - Linear weights are stored (OC, C) like llm.c and torch.nn.Linear: out = inp @ weight^T + bias.
 *     (Hugging Face GPT-2 Conv1D stores (C, OC); the checkpoint writer transposes.)
 *   - Every backward ACCUMULATES (+=) into its gradient outputs (dinp, dweight, dbias), so the caller
 *     zeroes gradients once per step and gradient accumulation over micro-batches is free.
 *   - `bias` may be null (no bias).
 *   - Backward kernels take an optional last argument `overwrite`: when true the input gradient
 *     (dinp / dqkv) is WRITTEN instead of accumulated (the caller then need not zero it; results are
 *     the same as zeroing first). Parameter gradients always accumulate.
 */
export type FloatArray = Float32Array | Float64Array;

export interface Kernels {
  readonly name: string;

  /** out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]. out (B,T,C). */
  encoderForward(
    out: FloatArray,
    tokens: Int32Array,
    wte: FloatArray,
    wpe: FloatArray,
    B: number,
    T: number,
    C: number,
  ): void;
  encoderBackward(
    dwte: FloatArray,
    dwpe: FloatArray,
    dout: FloatArray,
    tokens: Int32Array,
    B: number,
    T: number,
    C: number,
  ): void;

  /** Per-row LayerNorm, eps 1e-5. Saves mean (BT) and rstd (BT) for the backward. */
  layernormForward(
    out: FloatArray,
    mean: FloatArray,
    rstd: FloatArray,
    inp: FloatArray,
    weight: FloatArray,
    bias: FloatArray,
    BT: number,
    C: number,
  ): void;
  layernormBackward(
    dinp: FloatArray,
    dweight: FloatArray,
    dbias: FloatArray,
    dout: FloatArray,
    inp: FloatArray,
    weight: FloatArray,
    mean: FloatArray,
    rstd: FloatArray,
    BT: number,
    C: number,
    overwrite?: boolean,
  ): void;

  /** out (BT,OC) = inp (BT,C) @ weight(OC,C)^T + bias (OC). */
  matmulForward(
    out: FloatArray,
    inp: FloatArray,
    weight: FloatArray,
    bias: FloatArray | null,
    BT: number,
    C: number,
    OC: number,
  ): void;
  /** dinp += dout @ weight; dweight += dout^T @ inp; dbias += sum_rows(dout). */
  matmulBackward(
    dinp: FloatArray,
    dweight: FloatArray,
    dbias: FloatArray | null,
    dout: FloatArray,
    inp: FloatArray,
    weight: FloatArray,
    BT: number,
    C: number,
    OC: number,
    overwrite?: boolean,
  ): void;

  /**
   * Causal multi-head self-attention. qkv (B,T,3C) holds q,k,v concatenated per position; out (B,T,C).
   * att (B,NH,T,T) saves the softmax probabilities (entries above the diagonal are unused) for the
   * backward; scale 1/sqrt(C/NH).
   */
  attentionForward(
    out: FloatArray,
    att: FloatArray,
    qkv: FloatArray,
    B: number,
    T: number,
    C: number,
    NH: number,
  ): void;
  /** dqkv += gradient w.r.t. qkv. `scratch` has at least B*NH*T*T elements (overwritten). */
  attentionBackward(
    dqkv: FloatArray,
    scratch: FloatArray,
    dout: FloatArray,
    qkv: FloatArray,
    att: FloatArray,
    B: number,
    T: number,
    C: number,
    NH: number,
    overwrite?: boolean,
  ): void;

  /** GELU, tanh approximation (as GPT-2). */
  geluForward(out: FloatArray, inp: FloatArray, N: number): void;
  /** dinp (+)= gelu'(inp) * dout; dinp may be dout itself (in place, with overwrite). */
  geluBackward(dinp: FloatArray, inp: FloatArray, dout: FloatArray, N: number, overwrite?: boolean): void;

  /** out = a + b (N elements). */
  residualForward(out: FloatArray, a: FloatArray, b: FloatArray, N: number): void;

  /**
   * Fused softmax + cross-entropy over logits (BT,V). Writes losses[i] = -log softmax(logits[i])[targets[i]].
   * When `dlogits` is given, also writes (not accumulates) dlogits = (softmax - onehot) * dlossScale
   * (dlossScale is usually 1/(BT * gradAccumSteps)). Targets < 0 are ignored (loss 0, gradient 0).
   */
  crossEntropyForward(
    losses: FloatArray,
    dlogits: FloatArray | null,
    logits: FloatArray,
    targets: Int32Array,
    BT: number,
    V: number,
    dlossScale: number,
  ): void;

  /**
   * The tied output head fused with the loss: logits = lnf (BT,C) @ wte^T (V,C), then losses as
   * `crossEntropyForward`, without keeping the (BT,V) logits (native: block by block, so they stay in
   * cache). When `dlnf` and `dwte` are given (training), also WRITES (not accumulates)
   * dlnf = dlogits @ wte (BT,C) and dwte = dlogits^T @ lnf (V,C); the caller adds dwte to the tied
   * embedding's gradient.
   */
  logitsCrossEntropy(
    losses: FloatArray,
    dlnf: FloatArray | null,
    dwte: FloatArray | null,
    lnf: FloatArray,
    wte: FloatArray,
    targets: Int32Array,
    BT: number,
    C: number,
    V: number,
    dlossScale: number,
  ): void;

  /**
   * One AdamW step on a flat parameter range: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * p -= lr * (mhat / (sqrt(vhat) + eps) + weightDecay * p), with bias correction at step t (1-based).
   * Decoupled decay: pass weightDecay 0 for biases and norms.
   */
  adamwUpdate(
    params: FloatArray,
    grads: FloatArray,
    m: FloatArray,
    v: FloatArray,
    N: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    t: number,
  ): void;

  /**
   * Optional (native): global-norm clipping of the whole gradient buffer, as `clipGradNorm` in optim.ts
   * (float64 sum of squares in fixed chunks, so deterministic for any thread count). Returns the norm.
   */
  clipGradNorm?(grads: FloatArray, N: number, maxNorm: number): number;

  /** Number of threads the kernels use (native only; the reference is single-threaded). */
  setThreads?(n: number): void;
}
