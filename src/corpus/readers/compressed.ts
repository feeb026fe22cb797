import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";

/** Compression of a file, from its name: .gz (gzip, multi-member), .zst/.zstd (Zstandard), or none. */
export function compressionOf(path: string): "gzip" | "zstd" | "none" {
  if (/\.gz$/i.test(path)) return "gzip";
  if (/\.zstd?$/i.test(path)) return "zstd";
  return "none";
}

/**
 * The decompressed bytes of a file, streamed in chunks. Zstandard goes through fzstd's streaming
 * decoder (pure JS; Node 20's zlib has no zstd), fed one read chunk at a time, so a multi-GB shard never
 * sits in memory. A truncated zstd stream is an error, not a short read.
 */
export async function* readDecompressed(path: string): AsyncGenerator<Uint8Array> {
  const kind = compressionOf(path);
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    // Casts: a byte stream (no encoding set) yields Buffers, which are Uint8Arrays.
    if (kind === "gzip") {
      for await (const c of raw.pipe(createGunzip())) yield c as Uint8Array;
      return;
    }
    if (kind === "none") {
      for await (const c of raw) yield c as Uint8Array;
      return;
    }
    let out: Uint8Array[] = [];
    let ended = false;
    const dec = new Decompress((chunk, final) => {
      out.push(chunk);
      if (final) ended = true;
    });
    for await (const c of raw) {
      dec.push(c as Uint8Array);
      if (out.length) {
        yield* out;
        out = [];
      }
    }
    if (!ended) dec.push(new Uint8Array(0), true);
    yield* out;
  } finally {
    raw.destroy();
  }
}
