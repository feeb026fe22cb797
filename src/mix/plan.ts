import { SynthmixError } from "../util/errors.js";
import { deriveSeed, Rng } from "../util/rng.js";

/**
 * Split `total` tokens over shares so the parts sum to `total` exactly (largest-remainder rounding):
 * every source is within one token of its target share.
 */
export function targetTokens(shares: number[], total: number): number[] {
  const raw = shares.map((s) => s * total);
  const out = raw.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = raw
    .map((r, i) => ({ i, frac: r - Math.floor(r) }))
    .sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k].i]++;
  return out;
}

/** One document in a mixture: `take` tokens of it, counting the end-of-text that follows it. */
export interface PlannedUnit {
  source: number;
  doc: number;
  /** Tokens taken including the trailing eot; < length + 1 means the document was truncated. */
  take: number;
}

export interface PlanSource {
  name: string;
  share: number;
  /** Token count of each document (without eot). */
  lengths: ArrayLike<number>;
}

export interface MixturePlan {
  units: PlannedUnit[];
  /** Per source: realised tokens, documents used and passes over the source. */
  stats: { tokens: number; documents: number; epochs: number }[];
}

/**
 * The document order of a mixture. Each source yields its documents in a seeded random permutation
 * (a fresh one per epoch, seeded by source name, so a source's order is the same in every mixture),
 * and the sources are interleaved by weighted fair queueing on tokens with seeded jitter: the next
 * document comes from the source whose (emitted + jitter * next length) / share is smallest. That
 * interleaving does not depend on the total, so mixtures of the same sources, shares and seed at
 * different totals are nested: the smaller one holds the first `target_s` tokens of each source's
 * sequence, in the same relative order as the larger, and its file equals the larger's up to the point
 * where the first source reaches its target (near the end: each source tracks its share to within about
 * one document); after that the larger one interleaves further documents of the finished source. Each
 * source contributes exactly its target (largest remainder), its last document truncated to fit, so
 * realised shares are exact to one token.
 */
export function planMixture(
  sources: PlanSource[],
  total: number,
  seed: number,
  allowRepeat: boolean,
): MixturePlan {
  const targets = targetTokens(
    sources.map((s) => s.share),
    total,
  );
  const streams = sources.map((s) => new SourceStream(s, seed, allowRepeat));
  const emitted = sources.map(() => 0);
  const stats = sources.map(() => ({ tokens: 0, documents: 0, epochs: 0 }));
  const units: PlannedUnit[] = [];
  const unsatisfied = () => targets.some((t, i) => emitted[i] < t);
  while (unsatisfied()) {
    let best = -1;
    let bestKey = Number.POSITIVE_INFINITY;
    for (let i = 0; i < streams.length; i++) {
      const head = streams[i].head;
      if (head === null) {
        if (emitted[i] < targets[i]) throw exhausted(sources[i], targets[i], streams[i]);
        continue;
      }
      const key = (emitted[i] + head.jitter * head.len) / sources[i].share;
      if (key < bestKey) {
        bestKey = key;
        best = i;
      }
    }
    const s = streams[best];
    const head = s.head!;
    if (emitted[best] < targets[best]) {
      const take = Math.min(head.len, targets[best] - emitted[best]);
      units.push({ source: best, doc: head.doc, take });
      stats[best].tokens += take;
      stats[best].documents++;
      stats[best].epochs = Math.max(stats[best].epochs, head.epoch + 1);
    }
    emitted[best] += head.len;
    s.advance();
  }
  return { units, stats };
}

function exhausted(src: PlanSource, target: number, stream: SourceStream): SynthmixError {
  return new SynthmixError(
    "MIX_EXHAUSTED",
    `source "${src.name}" has ${stream.totalTokens} tokens (${src.lengths.length} documents, eot included) but the mixture needs ${target} tokens from it (share ${src.share})`,
    {
      hint: "add documents to the source, lower the total tokens or its share, or allow repeated epochs (--allow-repeat)",
    },
  );
}

interface Head {
  doc: number;
  len: number;
  epoch: number;
  jitter: number;
}

/** A source's documents as an endless (with repeats) or finite sequence of seeded permutations. */
class SourceStream {
  head: Head | null = null;
  readonly totalTokens: number;
  private perm: number[] = [];
  private pos = 0;
  private epoch = 0;
  private readonly jitterRng: Rng;

  constructor(
    private readonly src: PlanSource,
    private readonly seed: number,
    private readonly allowRepeat: boolean,
  ) {
    let t = 0;
    for (let i = 0; i < src.lengths.length; i++) t += src.lengths[i] + 1;
    this.totalTokens = t;
    this.jitterRng = new Rng(deriveSeed(seed, "mix-interleave", src.name));
    if (src.lengths.length > 0) {
      this.newEpoch();
      this.advance();
    }
  }

  private newEpoch(): void {
    const perm = Array.from({ length: this.src.lengths.length }, (_, i) => i);
    this.perm = new Rng(deriveSeed(this.seed, "mix-order", this.src.name, this.epoch)).shuffle(perm);
    this.pos = 0;
  }

  /** Move to the next document (the first call loads the first one). */
  advance(): void {
    if (this.pos >= this.perm.length) {
      if (!this.allowRepeat || this.perm.length === 0) {
        this.head = null;
        return;
      }
      this.epoch++;
      this.newEpoch();
    }
    const doc = this.perm[this.pos++];
    this.head = { doc, len: this.src.lengths[doc] + 1, epoch: this.epoch, jitter: this.jitterRng.next() };
  }
}
