import { Rng } from "../util/rng.js";

/**
 * Keyword extraction for textbook (TXBK) prompts: TF-IDF over the corpus on unigrams and bigrams
 * without stopwords, as in Cosmopedia-style topic seeding. Hand-written because it is ~50 lines and
 * the JS NLP libraries that have it (natural, wink) pull in large dependency trees.
 */

// A compact English stopword list (function words); keywords should carry content.
const STOP = new Set(
  (
    "a about above after again against all also am an and any are as at be because been before being below " +
    "between both but by can could did do does doing down during each few for from further had has have " +
    "having he her here hers herself him himself his how i if in into is it its itself just me more most " +
    "my myself no nor not now of off on once only or other our ours ourselves out over own same she should " +
    "so some such than that the their theirs them themselves then there these they this those through to " +
    "too under until up very was we were what when where which while who whom why will with would you " +
    "your yours yourself yourselves said one two would could may might must shall upon us many much well " +
    "like even also yet still though however thus"
  ).split(" "),
);

function terms(text: string): string[] {
  const words = text.toLowerCase().match(/[a-z][a-z'-]*[a-z]|[a-z]/g) ?? [];
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (STOP.has(w) || w.length < 3) continue;
    out.push(w);
    const n = words[i + 1];
    if (n && !STOP.has(n) && n.length >= 3) out.push(`${w} ${n}`);
  }
  return out;
}

export class KeywordExtractor {
  private readonly df = new Map<string, number>();
  private nDocs = 0;

  /** Add a corpus document to the document-frequency table. */
  add(text: string): void {
    this.nDocs++;
    for (const t of new Set(terms(text))) this.df.set(t, (this.df.get(t) ?? 0) + 1);
  }

  /** Top-`k` TF-IDF keywords of `text`; bigrams that contain a chosen unigram are kept only if better. */
  top(text: string, k: number): string[] {
    const tf = new Map<string, number>();
    for (const t of terms(text)) tf.set(t, (tf.get(t) ?? 0) + 1);
    const n = Math.max(this.nDocs, 1);
    const scored = [...tf.entries()]
      .filter(([t, c]) => c >= 1 && (t.includes(" ") ? c >= 2 : true))
      .map(([t, c]) => [t, c * Math.log((1 + n) / (1 + (this.df.get(t) ?? 0))) + c * 1e-9] as const)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const chosen: string[] = [];
    for (const [t] of scored) {
      if (chosen.length >= k) break;
      if (chosen.some((c) => c.includes(t) || t.includes(c))) continue;
      chosen.push(t);
    }
    return chosen;
  }

  /**
   * `count` keywords for a prompt: a seeded sample from the document's top 2*count, so reruns with the
   * same seed give the same prompt while different seeds vary the topic mix.
   */
  sample(text: string, count: number, seed: number): string[] {
    return KeywordExtractor.draw(this.top(text, count * 2), count, seed);
  }

  /**
   * `sample`'s draw from a pool computed once (`top(text, 2 * count)`): a document's sections each draw
   * their own keywords from the same pool, and ranking the document's terms per section cost ~20% of
   * the generation's main thread.
   */
  static draw(pool: readonly string[], count: number, seed: number): string[] {
    const p = [...pool];
    new Rng(seed).shuffle(p);
    return p.slice(0, count);
  }
}
