/**
 * llama.cpp's sampler chain as node-llama-cpp 3.22 builds it for LlamaCompletion (llama/addon/AddonSampler.cpp
 * and llama.cpp src/llama-sampler.cpp of the bundled release), re-implemented step for step so that the
 * native engine draws the same tokens as the llama engine from (nearly) the same logits:
 *
 *   temperature <= 0:  greedy (first maximum).
 *   otherwise:         top-k (k = 40) -> top-p (p, min_keep 1; skipped when p >= 1) -> temperature -> dist,
 *
 * where dist draws u = std::uniform_real_distribution<double>(0, 1) from a std::mt19937 seeded with the
 * request's seed (one fresh sampler per request, as node-llama-cpp makes one per evaluation) and picks the
 * first candidate whose running sum of exp(logit - max) reaches u * sum. float32 steps are emulated with
 * Math.fround; expf is Math.exp rounded to float (glibc's expf is correctly rounded in practice). The
 * repetition-penalty sampler LlamaCompletion adds by default has penalty 1, frequency 0, presence 0, which
 * llama.cpp skips (a no-op), so it is not modelled. Ties between equal logits are broken by the lower id
 * (std::partial_sort leaves their order unspecified).
 */

const fr = Math.fround;

/** std::mt19937 (32-bit Mersenne Twister, MT19937 reference algorithm). */
export class Mt19937 {
  private readonly mt = new Uint32Array(624);
  private idx = 624;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      // 1812433253 * prev + i (mod 2^32), split to stay exact in doubles.
      this.mt[i] = ((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i;
    }
  }

  nextU32(): number {
    if (this.idx >= 624) this.twist();
    let y = this.mt[this.idx++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
      let v = mt[(i + 397) % 624] ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v;
    }
    this.idx = 0;
  }

  /**
   * libstdc++'s std::generate_canonical<double, 53>(mt19937), which uniform_real_distribution<double>(0,1)
   * returns: two draws, (r1 + r2 * 2^32) / 2^64 in double arithmetic, clamped below 1.
   */
  canonical(): number {
    const r1 = this.nextU32();
    const r2 = this.nextU32();
    const v = (r1 + r2 * 4294967296) / 2 ** 64;
    return v >= 1 ? 1 - 2 ** -53 : v;
  }
}

export interface SamplerParams {
  temperature: number;
  /** Nucleus mass; node-llama-cpp's default is 0.95. Outside [0, 1] it is skipped (as the addon does). */
  topP: number;
  topK: number;
  seed: number;
}

/** node-llama-cpp's defaults for a LlamaCompletion request given the OpenAI-style sampling params. */
export function llamaSamplerParams(p: {
  temperature?: number;
  top_p?: number;
  seed?: number;
}): SamplerParams {
  return {
    temperature: p.temperature ?? 0,
    topP: p.top_p ?? 0.95,
    topK: 40,
    // node-llama-cpp: Math.max(0, floor(seed)) (its default, the time, is not reproducible: synthmix
    // always passes one; 0 when absent keeps this engine deterministic).
    seed: Math.max(0, Math.floor(p.seed ?? 0)) >>> 0,
  };
}

/** One request's sampler: its own RNG stream, so results never depend on what else is being decoded. */
export class LlamaChainSampler {
  private readonly rng: Mt19937;
  private readonly ids: Int32Array;
  private readonly vals: Float32Array;
  private readonly probs: Float32Array;
  private readonly temp: number;
  private readonly topP: number;

  constructor(
    private readonly p: SamplerParams,
    vocabSize: number,
  ) {
    this.rng = new Mt19937(p.seed);
    const k = Math.min(Math.max(p.topK <= 0 ? vocabSize : p.topK, 1), vocabSize);
    this.ids = new Int32Array(k);
    this.vals = new Float32Array(k);
    this.probs = new Float32Array(k);
    this.temp = fr(p.temperature);
    this.topP = fr(p.topP);
  }

  /** Picks the next token from one row of logits (length V). */
  sample(logits: Float32Array): number {
    if (!(this.p.temperature > 0)) return argmax(logits);
    const n = topK(logits, this.ids, this.vals);
    const size = this.p.topP >= 0 && this.p.topP <= 1 ? this.nucleus(n) : n;
    return this.ids[this.dist(size)];
  }

  /** llama_sampler_top_p_apply on sorted candidates: softmax in float, keep until the mass reaches p. */
  private nucleus(n: number): number {
    if (this.topP >= 1) return n;
    const { vals, probs } = this;
    const max = vals[0];
    let sum = 0;
    for (let i = 0; i < n; i++) {
      probs[i] = fr(Math.exp(fr(vals[i] - max)));
      sum = fr(sum + probs[i]);
    }
    let cum = 0;
    for (let i = 0; i < n; i++) {
      cum = fr(cum + fr(probs[i] / sum));
      if (cum >= this.topP) return i + 1;
    }
    return n;
  }

  /** Temperature, then llama_sampler_dist_apply: exp(logit - max) summed in double, inverse-CDF pick. */
  private dist(n: number): number {
    const u = this.rng.canonical();
    if (n === 1) return 0;
    const { vals, probs } = this;
    for (let i = 0; i < n; i++) vals[i] = fr(vals[i] / this.temp);
    const max = vals[0];
    let sum = 0;
    for (let i = 0; i < n; i++) {
      probs[i] = fr(Math.exp(fr(vals[i] - max)));
      sum += probs[i];
    }
    const target = sum * u;
    let run = 0;
    for (let i = 0; i < n; i++) {
      run += probs[i];
      if (run >= target) return i;
    }
    return n - 1;
  }
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The k largest logits in descending order (ties: lower id first) into ids/vals; returns k. */
export function topK(logits: Float32Array, ids: Int32Array, vals: Float32Array): number {
  const k = ids.length;
  let n = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (n === k && !(v > vals[k - 1])) continue;
    // Insertion into the sorted list; equal values keep arrival (id) order.
    let j = n < k ? n++ : k - 1;
    while (j > 0 && vals[j - 1] < v) {
      vals[j] = vals[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    vals[j] = v;
    ids[j] = i;
  }
  return n;
}
