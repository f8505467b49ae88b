// A small, fast, seeded PRNG (sfc32, "Small Fast Counting" by Chris Doty-Humphrey) whose whole state
// is four uint32 numbers, so a training run can save it in its checkpoint and resume the exact same
// stream of shuffles, dropout masks and MLM masks. Math.random cannot be seeded or saved.

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng seed must be a finite number, got ${seed}`);
    // Spread the seed over 128 bits with splitmix32, so nearby seeds (1, 2, 3) give unrelated streams.
    let s = Math.floor(seed) >>> 0;
    const splitmix32 = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix32();
    this.b = splitmix32();
    this.c = splitmix32();
    this.d = 1; // sfc32's counter
    for (let i = 0; i < 12; i++) this.nextUint32(); // warm up, as the reference implementation does
  }

  /** Next raw 32-bit unsigned integer. */
  private nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = (this.b ^ (this.b >>> 9)) >>> 0;
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in 0..n-1. */
  int(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n)) throw new Error(`Rng.int needs a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal sample (Box-Muller; no cached second value, so state() is the whole state). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1], keeps log finite
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** The full state, JSON-serialisable. Rng.fromState(r.state()) continues exactly where r is. */
  state(): number[] {
    return [this.a, this.b, this.c, this.d];
  }

  static fromState(s: number[]): Rng {
    if (!Array.isArray(s) || s.length !== 4 || !s.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
      throw new Error(`Rng state must be 4 uint32 numbers, got ${JSON.stringify(s)}`);
    }
    const r = new Rng(0);
    [r.a, r.b, r.c, r.d] = s;
    return r;
  }
}
