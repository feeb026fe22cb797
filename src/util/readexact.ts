import { readSync } from "node:fs";
import { SynthmixError } from "./errors.js";

/**
 * Fill `bytes` from `fd` starting at file offset `position`, looping over short reads (readSync may
 * return fewer bytes than asked, e.g. on pipes or network filesystems). A file that ends first is a
 * SynthmixError naming `path`, the offset and the byte counts: a truncated (or concurrently rewritten)
 * artifact, never silently a partly zero buffer. `code` lets the stage say what kind of file it was.
 */
export function readExactly(
  fd: number,
  bytes: Uint8Array,
  position: number,
  path: string,
  code = "SHORT_READ",
): void {
  let off = 0;
  while (off < bytes.length) {
    const got = readSync(fd, bytes, off, bytes.length - off, position + off);
    if (got === 0) {
      throw new SynthmixError(
        code,
        `${path}: unexpected end of file: wanted ${bytes.length} bytes at offset ${position}, the file ended after ${off}`,
        {
          hint: "the file is truncated or was changed while being read: rebuild it (the stage that wrote it resumes)",
        },
      );
    }
    off += got;
  }
}
