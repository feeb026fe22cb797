import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";

/**
 * The safetensors format (https://huggingface.co/docs/safetensors), written by hand because it is
 * tiny and we only need float32:
 *   [8 bytes: little-endian u64 header length N][N bytes: JSON header][raw tensor bytes]
 * The header maps tensor name -> {dtype, shape, data_offsets: [begin, end]} (offsets relative to the
 * first byte after the header) plus an optional "__metadata__" string -> string map. We pad the
 * header with spaces so the data starts 8-byte aligned, as the reference implementation does.
 */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new SynthmixError(
        "BAD_TENSOR",
        `tensor ${t.name}: shape [${t.shape}] has ${n} elements, data has ${t.data.length}`,
      );
    }
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += " ";
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors) {
    // Float32Array bytes are little-endian on every platform Node runs on (x86, arm64).
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

export function writeSafetensors(
  path: string,
  tensors: NamedTensor[],
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export interface SafetensorsFile {
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  metadata: Record<string, string>;
}

export function decodeSafetensors(bytes: Uint8Array, source = "<buffer>"): SafetensorsFile {
  const bad = (what: string) =>
    new SynthmixError("BAD_SAFETENSORS", `${source}: ${what}`, {
      hint: "the file is truncated or not a safetensors file; delete it to retrain",
    });
  if (bytes.length < 8) throw bad("shorter than the 8-byte header length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.length) throw bad(`header length ${n} exceeds the file size ${bytes.length}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, n).toString("utf8"));
  } catch (err) {
    throw bad(`header is not JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + n;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = info as unknown as Record<string, string>;
      continue;
    }
    if (info.dtype !== "F32") throw bad(`tensor ${name} has dtype ${info.dtype}; only F32 is supported`);
    const [begin, end] = info.data_offsets;
    if (dataStart + end > bytes.length || end - begin !== 4 * info.shape.reduce((a, b) => a * b, 1)) {
      throw bad(
        `tensor ${name}: data_offsets [${begin}, ${end}] do not match shape [${info.shape}] or the file size`,
      );
    }
    // Copy so the result is aligned and independent of the file buffer.
    const data = new Float32Array((end - begin) / 4);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { shape: info.shape, data });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  return decodeSafetensors(readFileSync(path), path);
}
