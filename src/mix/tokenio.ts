import { closeSync, openSync } from "node:fs";
import { AtomicFile } from "../util/atomic.js";
import { readExactly } from "../util/readexact.js";
import type { TokenDtype } from "../util/tokenfile.js";

const CHUNK = 1 << 20; // tokens buffered before a write: 2-4 MB whatever the file size

/**
 * Append-only token file written through a fixed buffer, then renamed into place (atomic like
 * writeFileAtomic): the streaming half of the data path, so no stage holds a whole token file.
 */
export class TokenWriter {
  private readonly file: AtomicFile;
  private readonly buf: Uint16Array | Uint32Array;
  private used = 0;
  /** Tokens written so far. */
  count = 0;
  constructor(
    readonly path: string,
    dtype: TokenDtype,
  ) {
    this.file = new AtomicFile(path);
    this.buf = dtype === "uint16" ? new Uint16Array(CHUNK) : new Uint32Array(CHUNK);
  }
  push(ids: ArrayLike<number>): void {
    let i = 0;
    while (i < ids.length) {
      const n = Math.min(ids.length - i, this.buf.length - this.used);
      // Casts: a typed-array view (checked by its subarray method) is copied in one set().
      if ("subarray" in ids && typeof (ids as Uint16Array).subarray === "function") {
        this.buf.set((ids as Uint16Array).subarray(i, i + n), this.used);
      } else {
        for (let k = 0; k < n; k++) this.buf[this.used + k] = ids[i + k];
      }
      this.used += n;
      i += n;
      if (this.used === this.buf.length) this.flush();
    }
    this.count += ids.length;
  }
  pushOne(id: number): void {
    this.buf[this.used++] = id;
    this.count++;
    if (this.used === this.buf.length) this.flush();
  }
  private flush(): void {
    this.file.write(new Uint8Array(this.buf.buffer, 0, this.used * this.buf.BYTES_PER_ELEMENT));
    this.used = 0;
  }
  /** fsync, close and rename over `path`. */
  commit(): void {
    this.flush();
    this.file.commit();
  }
  abort(): void {
    this.file.abort();
  }
}

/** Random-access reads of a raw token file: documents are read one at a time with pread. */
export class TokenReader {
  private readonly fd: number;
  private readonly width: number;
  constructor(
    readonly path: string,
    readonly dtype: TokenDtype,
  ) {
    this.fd = openSync(path, "r");
    this.width = dtype === "uint16" ? 2 : 4;
  }
  /** Tokens [start, start + n) into a fresh aligned array. */
  read(start: number, n: number): Uint16Array | Uint32Array {
    const out = this.dtype === "uint16" ? new Uint16Array(n) : new Uint32Array(n);
    const bytes = new Uint8Array(out.buffer);
    readExactly(this.fd, bytes, start * this.width, this.path, "BAD_TOKEN_FILE");
    return out;
  }
  close(): void {
    closeSync(this.fd);
  }
}
