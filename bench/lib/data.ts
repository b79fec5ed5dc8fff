/**
 * Benchmark data: deterministic random keys and values, and the random orders
 * in which the workloads visit them. Every implementation gets the very same
 * bytes in the very same order.
 *
 * @module
 */

/** sfc32: a small, fast, seedable PRNG (32-bit outputs). */
export function prng(seed: number): () => number {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
  const next = () => {
    a >>>= 0, b >>>= 0, c >>>= 0, d >>>= 0;
    const t = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

/** Fills `buf` with pseudo-random bytes. */
export function fillRandom(buf: Uint8Array, rand: () => number): void {
  const whole = buf.length & ~3;
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, whole >>> 2);
  for (let i = 0; i < u32.length; i++) u32[i] = rand();
  for (let i = whole; i < buf.length; i++) buf[i] = rand() & 0xff;
}

/** A set of records: `count` random keys of `keySize` bytes, values of `valueSize` bytes. */
export class Dataset {
  /** All keys, back to back (insertion order, which is random key order). */
  readonly keys: Uint8Array;
  /** Random bytes the values are cut from. */
  readonly #pool: Uint8Array;
  static readonly POOL = 1 << 20;

  constructor(
    readonly count: number,
    readonly keySize: number,
    readonly valueSize: number,
    seed = 1,
  ) {
    const rand = prng(seed);
    this.keys = new Uint8Array(count * keySize);
    fillRandom(this.keys, rand);
    this.#pool = new Uint8Array(Dataset.POOL + valueSize);
    fillRandom(this.#pool, rand);
  }

  /** Key i (a view into `keys`). */
  key(i: number): Uint8Array {
    return this.keys.subarray(i * this.keySize, (i + 1) * this.keySize);
  }

  /** Value i (a view into the pool; values overlap, which no store can exploit). */
  value(i: number): Uint8Array {
    const off = Math.imul(i, 4099) & (Dataset.POOL - 1);
    return this.#pool.subarray(off, off + this.valueSize);
  }

  /**
   * `n` keys drawn uniformly at random (with replacement) from the dataset:
   * `flat` holds them back to back for the native harness, `list` as separate
   * Uint8Arrays (views of `flat`) for the JavaScript APIs. Only the first
   * `from` keys are drawn from.
   */
  sample(n: number, seed: number, from = this.count): KeySample {
    const rand = prng(seed);
    const index = new Uint32Array(n);
    for (let i = 0; i < n; i++) index[i] = rand() % from;
    return this.pick(index);
  }

  /** The keys of records `index[0]`, `index[1]`, … in that order (see sample). */
  pick(index: Uint32Array): KeySample {
    const n = index.length, ks = this.keySize;
    const flat = new Uint8Array(n * ks);
    for (let i = 0; i < n; i++) {
      const j = index[i];
      flat.set(this.keys.subarray(j * ks, (j + 1) * ks), i * ks);
    }
    const list = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) list[i] = flat.subarray(i * ks, (i + 1) * ks);
    return { flat, list, keySize: ks, index };
  }
}

/** Keys to visit, in order. */
export interface KeySample {
  flat: Uint8Array;
  list: Uint8Array[];
  keySize: number;
  /** The record index of each key, when the sample was drawn from a Dataset. */
  index?: Uint32Array;
}

/**
 * `n` record indices below `count` drawn with replacement from a Zipf
 * distribution of exponent `s`: index r - 1 has probability proportional to
 * 1 / r^s (record 0 is the most popular; records are in random key order, so
 * the popular ones are spread over the whole table).
 */
export function zipf(n: number, count: number, s: number, seed: number): Uint32Array {
  const cdf = new Float64Array(count);
  let total = 0;
  for (let r = 0; r < count; r++) cdf[r] = total += 1 / Math.pow(r + 1, s);
  const rand = prng(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const u = ((rand() + rand() / 4294967296) / 4294967296) * total;
    let lo = 0, hi = count - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    out[i] = lo;
  }
  return out;
}

/** Batches of a sample, in rotation: batch b is keys [b*size, (b+1)*size). */
export class Batches {
  readonly count: number;
  #next = 0;
  constructor(readonly sample: KeySample, readonly size: number) {
    this.count = Math.floor(sample.list.length / size);
    if (this.count < 1) throw new RangeError(`a sample of ${sample.list.length} keys has no batch of ${size}`);
  }

  /** Index of the next batch (rotating). */
  next(): number {
    const b = this.#next;
    this.#next = b + 1 === this.count ? 0 : b + 1;
    return b;
  }

  /** The flat keys of batch b, for the native harness. */
  flat(b: number): Uint8Array {
    const ks = this.sample.keySize;
    return this.sample.flat.subarray(b * this.size * ks, (b + 1) * this.size * ks);
  }
}
