import { closeSync, fsyncSync, openSync } from "node:fs";
import { writeAll } from "../util/atomic.js";

/** Buffered line writer on a raw fd: large writes, and an fsync on close so a rename after it is safe. */
export class LineWriter {
  private fd: number;
  private parts: string[] = [];
  private size = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, "w");
  }
  writeLine(line: string): void {
    this.parts.push(line, "\n");
    this.size += line.length + 1;
    if (this.size > 1 << 20) this.flush();
  }
  private flush(): void {
    if (this.parts.length === 0) return;
    writeAll(this.fd, Buffer.from(this.parts.join(""), "utf8"));
    this.parts = [];
    this.size = 0;
  }
  close(): void {
    if (this.fd < 0) return;
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }
}
