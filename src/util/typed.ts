type GrowableArray = Uint16Array | Int32Array | Uint32Array;

/** A copy of `a` in a buffer of the same type with at least `need` elements, its length doubled until it fits (amortised appends). */
export function grown<T extends GrowableArray>(a: T, need: number): T {
  let cap = Math.max(1, a.length * 2);
  while (cap < need) cap *= 2;
  const b = new (a.constructor as new (length: number) => T)(cap);
  b.set(a);
  return b;
}
