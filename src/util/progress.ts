/**
 * One progress reporter for every long stage: a redrawn bar with rate and ETA on a TTY, and plain
 * log lines (at most one every `logEverySec`) otherwise, so CI logs and `| tee` stay readable.
 * Hand-written because no small library does both modes and the extra fields (loss, tokens/s) we need.
 */
export interface ProgressOptions {
  total?: number;
  unit?: string;
  stream?: NodeJS.WriteStream;
  logEverySec?: number;
  /** Force a mode; default: bar when the stream is a TTY and SYNTHMIX_PROGRESS is not "plain". */
  mode?: "bar" | "plain" | "silent";
}

export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private lastDraw = 0;
  private lastLog = 0;
  private fields: Record<string, string | number> = {};
  private readonly stream: NodeJS.WriteStream;
  private readonly mode: "bar" | "plain" | "silent";
  private finished = false;

  constructor(
    readonly label: string,
    private readonly opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.mode =
      opts.mode ??
      (process.env.SYNTHMIX_PROGRESS === "silent"
        ? "silent"
        : this.stream.isTTY && process.env.SYNTHMIX_PROGRESS !== "plain"
          ? "bar"
          : "plain");
  }

  setTotal(total: number): void {
    this.opts.total = total;
  }

  /** Advance by `n` units and update extra fields shown after the bar (e.g. `{ loss: 3.21 }`). */
  tick(n = 1, fields?: Record<string, string | number>): void {
    this.update(this.done + n, fields);
  }

  update(done: number, fields?: Record<string, string | number>): void {
    this.done = done;
    if (fields) Object.assign(this.fields, fields);
    const now = Date.now();
    if (this.mode === "bar" && now - this.lastDraw > 100) {
      this.lastDraw = now;
      this.stream.write(`\r${this.line()}\x1b[K`);
    } else if (this.mode === "plain" && now - this.lastLog > (this.opts.logEverySec ?? 10) * 1000) {
      this.lastLog = now;
      this.stream.write(`${this.line()}\n`);
    }
  }

  log(message: string): void {
    if (this.mode === "silent") return;
    if (this.mode === "bar") this.stream.write(`\r\x1b[K${message}\n${this.line()}`);
    else this.stream.write(`${message}\n`);
  }

  finish(summary?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.mode === "silent") return;
    if (this.mode === "bar") this.stream.write(`\r${this.line()}\x1b[K\n`);
    else this.stream.write(`${this.line()}\n`);
    if (summary) this.stream.write(`${summary}\n`);
  }

  get elapsedSec(): number {
    return (Date.now() - this.start) / 1000;
  }

  private line(): string {
    const elapsed = Math.max(this.elapsedSec, 1e-9);
    const rate = this.done / elapsed;
    const unit = this.opts.unit ?? "it";
    const total = this.opts.total;
    const extra = Object.entries(this.fields)
      .map(([k, v]) => `${k} ${typeof v === "number" ? fmtNum(v) : v}`)
      .join("  ");
    let head: string;
    if (total && total > 0) {
      const frac = Math.min(1, this.done / total);
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = this.mode === "bar" ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
      const eta = rate > 0 ? (total - this.done) / rate : Number.POSITIVE_INFINITY;
      head = `${this.label} ${bar}${(frac * 100).toFixed(1)}% ${fmtNum(this.done)}/${fmtNum(total)} ${unit}  ${fmtNum(rate)} ${unit}/s  ETA ${fmtDuration(eta)}`;
    } else {
      head = `${this.label} ${fmtNum(this.done)} ${unit}  ${fmtNum(rate)} ${unit}/s  ${fmtDuration(elapsed)}`;
    }
    return extra ? `${head}  ${extra}` : head;
  }
}

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  if (Number.isInteger(x)) return String(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 1) return x.toFixed(3);
  return x.toPrecision(3);
}

export function fmtDuration(sec: number): string {
  if (!Number.isFinite(sec)) return "--";
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
