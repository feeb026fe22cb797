import { evalWindows, type TokenArray } from "../train/data.js";
import { loadModel } from "../train/sample.js";

/**
 * Per-token test losses of a trained run (`<run>/model.safetensors`) on the same fixed evaluation windows
 * the trainer scores (src/train/data.ts evalWindows), so their mean is the run's reported test loss.
 * losses[i] = -log p(targets[i] | context); computed from the logits as logsumexp - logit[target].
 */
export function perTokenLosses(
  runDir: string,
  tokens: TokenArray,
  evalTokens: number,
): { losses: Float64Array; targets: Int32Array } {
  const { model } = loadModel(runDir, { batch: 1 });
  const T = model.T;
  const { x, y, rows, count } = evalWindows(tokens, T, evalTokens);
  const losses = new Float64Array(count);
  const targets = new Int32Array(count);
  let k = 0;
  for (let r = 0; r < rows; r++) {
    const xs = x.subarray(r * T, (r + 1) * T);
    const ys = y.subarray(r * T, (r + 1) * T);
    model.forward(xs, ys, { B: 1, needGrad: false });
    const logits = model.logitsOf(0);
    const V = logits.length / T;
    for (let t = 0; t < T && k < count; t++) {
      const target = ys[t];
      if (target < 0) continue;
      let m = Number.NEGATIVE_INFINITY;
      for (let v = 0; v < V; v++) m = Math.max(m, logits[t * V + v]);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(logits[t * V + v] - m);
      losses[k] = m + Math.log(s) - logits[t * V + target];
      targets[k] = target;
      k++;
    }
  }
  return { losses: losses.subarray(0, k), targets: targets.subarray(0, k) };
}
