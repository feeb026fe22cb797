import { createHash } from "node:crypto";
import { fitRows } from "./src/fit/workspace.js";
import { syntheticRows } from "./test/fit/synthetic.js";
const out: unknown[] = [];
for (const form of ["joint", "data"]) {
  const res = fitRows(syntheticRows(0.004, 3, { Ns: [1e5, 3e5, 1e6], ratios: [0, 0.2, 0.4, 0.6, 0.8] }), { form, bootstrap: 40, seed: 2 });
  out.push(res.fits.fits, res.speedups.entries, res.bestRatio.entries);
}
import { readRunRows } from "./src/fit/groups.js";
const fx = fitRows(readRunRows("test/fixtures/report/ws"), { form: "data", bootstrap: 30, seed: 3 });
if (!fx.bestRatio.entries.some((e) => e.mixingLaw?.domains)) throw new Error("no per-domain laws");
out.push(fx.bestRatio.entries, fx.fits.fits);
console.log(createHash("sha256").update(JSON.stringify(out)).digest("hex"));
