/**
 * Write examples/demo.yaml from the built-in demo (src/study/demo.ts), so the file and `synthmix demo`
 * never drift apart (test/study/examples.test.ts checks that they agree).
 *
 *   npx tsx scripts/write-demo-yaml.ts
 */
import { stringify } from "yaml";
import { demoConfig } from "../src/study/demo.js";
import { writeFileAtomic } from "../src/util/atomic.js";

const HEADER = `# The built-in demo study (\`synthmix demo\`), as a config file: \`synthmix study run examples/demo.yaml\`.
# Paths are relative to this file; the workspace is ../synthmix-demo. The design (the calibration runs
# that chose it, and what it can and cannot identify) is in docs/study.md. \`synthmix study plan\` prints
# runs, tokens, FLOPs and the time estimate. Generated from src/study/demo.ts by
# scripts/write-demo-yaml.ts (test/study/examples.test.ts checks that the two agree).
`;

const body = stringify({ workspace: "../synthmix-demo", ...demoConfig(false) }, { lineWidth: 0 });
writeFileAtomic(new URL("../examples/demo.yaml", import.meta.url).pathname, HEADER + body);
