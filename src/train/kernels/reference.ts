/**
 * Plain TypeScript kernels, llm.c style: each layer's forward and backward side by side, flat row-major
 * arrays, every backward accumulating (+=) into its gradients. Generic over Float32Array/Float64Array:
 * arithmetic happens in JS doubles and is rounded on store, so the Float64 path is exact enough for
 * finite-difference gradient checks. This is the specification the native addon is tested against,
 * so clarity wins over speed (only the matmul loop order is chosen for cache friendliness).
 */
import type { FloatArray, Kernels } from "./types.js";

const GELU_SCALE = Math.sqrt(2 / Math.PI);
const LN_EPS = 1e-5;

// ---------------------------------------------------------------- encoder (token + position embedding)

function encoderForward(
  out: FloatArray,
  tokens: Int32Array,
  wte: FloatArray,
  wpe: FloatArray,
  B: number,
  T: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const w = tokens[b * T + t] * C;
      const p = t * C;
      for (let i = 0; i < C; i++) out[o + i] = wte[w + i] + wpe[p + i];
    }
  }
}

function encoderBackward(
  dwte: FloatArray,
  dwpe: FloatArray,
  dout: FloatArray,
  tokens: Int32Array,
  B: number,
  T: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const w = tokens[b * T + t] * C;
      const p = t * C;
      for (let i = 0; i < C; i++) {
        dwte[w + i] += dout[o + i];
        dwpe[p + i] += dout[o + i];
      }
    }
  }
}

// ---------------------------------------------------------------- layernorm

function layernormForward(
  out: FloatArray,
  mean: FloatArray,
  rstd: FloatArray,
  inp: FloatArray,
  weight: FloatArray,
  bias: FloatArray,
  BT: number,
  C: number,
): void {
  for (let r = 0; r < BT; r++) {
    const x = r * C;
    let m = 0;
    for (let i = 0; i < C; i++) m += inp[x + i];
    m /= C;
    let v = 0;
    for (let i = 0; i < C; i++) {
      const d = inp[x + i] - m;
      v += d * d;
    }
    v /= C; // biased variance, as torch.nn.LayerNorm
    const s = 1 / Math.sqrt(v + LN_EPS);
    for (let i = 0; i < C; i++) out[x + i] = (inp[x + i] - m) * s * weight[i] + bias[i];
    mean[r] = m;
    rstd[r] = s;
  }
}

function layernormBackward(
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
  overwrite = false,
): void {
  if (overwrite) dinp.fill(0, 0, BT * C);
  for (let r = 0; r < BT; r++) {
    const x = r * C;
    const m = mean[r];
    const s = rstd[r];
    // two reductions of the normalised-input gradient (through mean and through variance)
    let dnormMean = 0;
    let dnormNormMean = 0;
    for (let i = 0; i < C; i++) {
      const norm = (inp[x + i] - m) * s;
      const dnorm = weight[i] * dout[x + i];
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean /= C;
    dnormNormMean /= C;
    for (let i = 0; i < C; i++) {
      const norm = (inp[x + i] - m) * s;
      const dnorm = weight[i] * dout[x + i];
      dbias[i] += dout[x + i];
      dweight[i] += norm * dout[x + i];
      dinp[x + i] += (dnorm - dnormMean - norm * dnormNormMean) * s;
    }
  }
}

// ---------------------------------------------------------------- matmul (linear layer, weight (OC,C))

function matmulForward(
  out: FloatArray,
  inp: FloatArray,
  weight: FloatArray,
  bias: FloatArray | null,
  BT: number,
  C: number,
  OC: number,
): void {
  for (let r = 0; r < BT; r++) {
    const x = r * C;
    for (let o = 0; o < OC; o++) {
      const w = o * C;
      let acc = bias === null ? 0 : bias[o];
      for (let i = 0; i < C; i++) acc += inp[x + i] * weight[w + i];
      out[r * OC + o] = acc;
    }
  }
}

function matmulBackward(
  dinp: FloatArray,
  dweight: FloatArray,
  dbias: FloatArray | null,
  dout: FloatArray,
  inp: FloatArray,
  weight: FloatArray,
  BT: number,
  C: number,
  OC: number,
  overwrite = false,
): void {
  if (overwrite) dinp.fill(0, 0, BT * C);
  // dinp (BT,C) += dout (BT,OC) @ weight (OC,C)
  for (let r = 0; r < BT; r++) {
    const x = r * C;
    for (let o = 0; o < OC; o++) {
      const d = dout[r * OC + o];
      const w = o * C;
      for (let i = 0; i < C; i++) dinp[x + i] += d * weight[w + i];
    }
  }
  // dweight (OC,C) += dout^T (OC,BT) @ inp (BT,C); dbias (OC) += column sums of dout
  for (let o = 0; o < OC; o++) {
    const w = o * C;
    let db = 0;
    for (let r = 0; r < BT; r++) {
      const d = dout[r * OC + o];
      const x = r * C;
      db += d;
      for (let i = 0; i < C; i++) dweight[w + i] += d * inp[x + i];
    }
    if (dbias !== null) dbias[o] += db;
  }
}

// ---------------------------------------------------------------- causal multi-head self-attention

/** Geometry of one attention problem: offsets into qkv (B,T,3C), att (B,NH,T,T) and out (B,T,C). */
interface Heads {
  T: number;
  C: number;
  NH: number;
  hs: number;
  scale: number;
}

function heads(T: number, C: number, NH: number): Heads {
  const hs = C / NH;
  return { T, C, NH, hs, scale: 1 / Math.sqrt(hs) };
}

/** Offset of head h of the query (part 0), key (1) or value (2) of token t of sequence b in qkv. */
const qkvAt = (g: Heads, b: number, t: number, h: number, part: number): number =>
  (b * g.T + t) * 3 * g.C + h * g.hs + part * g.C;

/** Attention of query (b, t) in head h: softmax row att[.., t, :] and out[b, t, head h]. */
function attendRow(
  out: FloatArray,
  att: FloatArray,
  qkv: FloatArray,
  g: Heads,
  b: number,
  t: number,
  h: number,
) {
  const { T, hs } = g;
  const q = qkvAt(g, b, t, h, 0);
  const a = ((b * g.NH + h) * T + t) * T;
  // pre-softmax scores for keys 0..t, then a numerically stable softmax
  let maxv = Number.NEGATIVE_INFINITY;
  for (let t2 = 0; t2 <= t; t2++) {
    const k = qkvAt(g, b, t2, h, 1);
    let dot = 0;
    for (let i = 0; i < hs; i++) dot += qkv[q + i] * qkv[k + i];
    dot *= g.scale;
    att[a + t2] = dot;
    if (dot > maxv) maxv = dot;
  }
  let sum = 0;
  for (let t2 = 0; t2 <= t; t2++) {
    const e = Math.exp(att[a + t2] - maxv);
    att[a + t2] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let t2 = 0; t2 < T; t2++) att[a + t2] = t2 <= t ? att[a + t2] * inv : 0;
  const o = (b * T + t) * g.C + h * hs;
  for (let i = 0; i < hs; i++) out[o + i] = 0;
  for (let t2 = 0; t2 <= t; t2++) {
    const v = qkvAt(g, b, t2, h, 2);
    const p = att[a + t2];
    for (let i = 0; i < hs; i++) out[o + i] += p * qkv[v + i];
  }
}

function attentionForward(
  out: FloatArray,
  att: FloatArray,
  qkv: FloatArray,
  B: number,
  T: number,
  C: number,
  NH: number,
): void {
  const g = heads(T, C, NH);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) for (let h = 0; h < NH; h++) attendRow(out, att, qkv, g, b, t, h);
}

/** Backward of attendRow for (b, t, h): accumulates into dq of t and dk, dv of keys 0..t. */
function attendRowBackward(
  dqkv: FloatArray,
  scratch: FloatArray,
  dout: FloatArray,
  qkv: FloatArray,
  att: FloatArray,
  g: Heads,
  b: number,
  t: number,
  h: number,
) {
  const { T, hs } = g;
  const q = qkvAt(g, b, t, h, 0);
  const a = ((b * g.NH + h) * T + t) * T;
  const o = (b * T + t) * g.C + h * hs;
  // through out = att @ v: datt (into scratch) and dv
  for (let t2 = 0; t2 <= t; t2++) {
    const v = qkvAt(g, b, t2, h, 2);
    let d = 0;
    for (let i = 0; i < hs; i++) {
      d += qkv[v + i] * dout[o + i];
      dqkv[v + i] += att[a + t2] * dout[o + i];
    }
    scratch[a + t2] = d;
  }
  // through the softmax: dpre = att * (datt - sum(att * datt)), in place in scratch
  let dot = 0;
  for (let t2 = 0; t2 <= t; t2++) dot += att[a + t2] * scratch[a + t2];
  for (let t2 = 0; t2 <= t; t2++) scratch[a + t2] = att[a + t2] * (scratch[a + t2] - dot);
  // through pre = scale * q . k: dq and dk
  for (let t2 = 0; t2 <= t; t2++) {
    const k = qkvAt(g, b, t2, h, 1);
    const d = scratch[a + t2] * g.scale;
    for (let i = 0; i < hs; i++) {
      dqkv[q + i] += qkv[k + i] * d;
      dqkv[k + i] += qkv[q + i] * d;
    }
  }
}

function attentionBackward(
  dqkv: FloatArray,
  scratch: FloatArray,
  dout: FloatArray,
  qkv: FloatArray,
  att: FloatArray,
  B: number,
  T: number,
  C: number,
  NH: number,
  overwrite = false,
): void {
  if (overwrite) dqkv.fill(0, 0, B * T * 3 * C);
  const g = heads(T, C, NH);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < NH; h++) attendRowBackward(dqkv, scratch, dout, qkv, att, g, b, t, h);
}

// ---------------------------------------------------------------- GELU (tanh approximation)

function geluForward(out: FloatArray, inp: FloatArray, N: number): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    out[i] = 0.5 * x * (1 + Math.tanh(GELU_SCALE * (x + 0.044715 * x * x * x)));
  }
}

function geluBackward(
  dinp: FloatArray,
  inp: FloatArray,
  dout: FloatArray,
  N: number,
  overwrite = false,
): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    const u = GELU_SCALE * (x + 0.044715 * x * x * x);
    const th = Math.tanh(u);
    const sech2 = 1 - th * th;
    const grad = 0.5 * (1 + th) + 0.5 * x * sech2 * GELU_SCALE * (1 + 3 * 0.044715 * x * x);
    // dout[i] is read before dinp[i] is written: dinp may be dout (the model works in place)
    dinp[i] = (overwrite ? 0 : dinp[i]) + grad * dout[i];
  }
}

// ---------------------------------------------------------------- residual

function residualForward(out: FloatArray, a: FloatArray, b: FloatArray, N: number): void {
  for (let i = 0; i < N; i++) out[i] = a[i] + b[i];
}

// ---------------------------------------------------------------- fused softmax + cross-entropy

/** Row r of crossEntropyForward (x = r * V): returns the loss, writes dlogits[x..x+V) when given. */
function crossEntropyRow(
  dlogits: FloatArray | null,
  logits: FloatArray,
  x: number,
  target: number,
  V: number,
  dlossScale: number,
): number {
  let maxv = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) if (logits[x + i] > maxv) maxv = logits[x + i];
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[x + i] - maxv);
  if (dlogits !== null) {
    const inv = 1 / sum;
    for (let i = 0; i < V; i++) {
      const p = Math.exp(logits[x + i] - maxv) * inv;
      dlogits[x + i] = (p - (i === target ? 1 : 0)) * dlossScale;
    }
  }
  // -log p[target] computed in log space, so it stays finite for very confident wrong predictions
  return Math.log(sum) - (logits[x + target] - maxv);
}

function crossEntropyForward(
  losses: FloatArray,
  dlogits: FloatArray | null,
  logits: FloatArray,
  targets: Int32Array,
  BT: number,
  V: number,
  dlossScale: number,
): void {
  for (let r = 0; r < BT; r++) {
    const target = targets[r];
    if (target >= 0) {
      losses[r] = crossEntropyRow(dlogits, logits, r * V, target, V, dlossScale);
      continue;
    }
    losses[r] = 0;
    if (dlogits !== null) dlogits.fill(0, r * V, (r + 1) * V);
  }
}

/**
 * The tied output head fused with the loss (see Kernels.logitsCrossEntropy): here simply the three
 * unfused reference kernels in a row, on a temporary logits array of lnf's precision.
 */
function logitsCrossEntropy(
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
): void {
  if ((dlnf === null) !== (dwte === null))
    throw new TypeError("dlnf and dwte must both be given or both be null");
  const alloc = (n: number): FloatArray =>
    lnf instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
  const logits = alloc(BT * V);
  matmulForward(logits, lnf, wte, null, BT, C, V);
  const dlogits = dlnf === null ? null : alloc(BT * V);
  crossEntropyForward(losses, dlogits, logits, targets, BT, V, dlossScale);
  if (dlnf === null || dwte === null || dlogits === null) return;
  dwte.fill(0, 0, V * C);
  matmulBackward(dlnf, dwte, null, dlogits, lnf, wte, BT, C, V, true);
}

// ---------------------------------------------------------------- AdamW

function adamwUpdate(
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
): void {
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  for (let i = 0; i < N; i++) {
    const g = grads[i];
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const mhat = mi / c1;
    const vhat = vi / c2;
    params[i] -= lr * (mhat / (Math.sqrt(vhat) + eps) + weightDecay * params[i]);
  }
}

export const referenceKernels: Kernels = {
  name: "reference",
  encoderForward,
  encoderBackward,
  layernormForward,
  layernormBackward,
  matmulForward,
  matmulBackward,
  attentionForward,
  attentionBackward,
  geluForward,
  geluBackward,
  residualForward,
  crossEntropyForward,
  logitsCrossEntropy,
  adamwUpdate,
};
