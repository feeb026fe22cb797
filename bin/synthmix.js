#!/usr/bin/env node
// The compiled CLI (built by `npm ci` through the `prepare` script). Loads only the stage of the command
// it runs (dist/cli/entry.js).
import { mainLazy } from "../dist/cli/entry.js";

mainLazy(process.argv).catch((err) => {
  console.error(err?.message ?? err);
  process.exit(1);
});
