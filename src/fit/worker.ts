import { parentPort } from "node:worker_threads";
import { bootstrapRange, screen } from "./fit.js";
import type { FitData } from "./forms.js";
import { getForm } from "./forms.js";

/** A slice of a fit run in a worker thread: screening part of the grid, or part of the bootstrap. */
export type FitTask =
  | { kind: "screen"; form: string; data: FitData; delta: number; starts: number[][] }
  | {
      kind: "boot";
      form: string;
      data: FitData;
      delta: number;
      starts: number[][];
      seed: number;
      from: number;
      to: number;
    };

parentPort?.on("message", (msg: { id: number; task: FitTask }) => {
  try {
    const t = msg.task;
    const form = getForm(t.form);
    if (!form)
      throw new Error(`unknown form ${t.form} in a fit worker (only registered built-ins run in workers)`);
    const result =
      t.kind === "screen"
        ? screen(form, t.data, t.delta, t.starts)
        : bootstrapRange(form, t.data, t.delta, t.starts, t.seed, t.from, t.to);
    parentPort?.postMessage({ id: msg.id, result });
  } catch (e) {
    parentPort?.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
