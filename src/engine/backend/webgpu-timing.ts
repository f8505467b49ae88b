// GPU time of a recorded pass, program by program, from WebGPU timestamp queries: where a
// replayed step's device time goes (bench's profile, scripts/gpu-check.sh's table; docs/gpu.md).
//
// A profiled replay encodes the recording's programs in one of two ways, alternately:
// - 'whole': as a plain replay does, with one stamp at the start of its first compute pass and one
//   at the end of its last: the step's time on the device;
// - 'each': every program in a compute pass of its own, its start and end stamped: the program's
//   own time. Their sum is above 'whole' by what the GPU overlaps between programs (Dawn already
//   puts a barrier between the programs of a pass that share a buffer).
// Each kind's times are the median over its replays. The replays compute what a plain replay does
// (the same programs over the same buffers, in the same order).
//
// Dawn rounds timestamps to 65.536 us unless its timestamp_quantization toggle is off; the
// instance is made with it off (webgpu.ts dawnFlags), as a tool on the user's own machine may.

/* eslint-disable @typescript-eslint/no-explicit-any -- WebGPU's types are not in our tsconfig */
type GPUBuffer = any;
declare const GPUBufferUsage: { COPY_SRC: number; COPY_DST: number; MAP_READ: number; QUERY_RESOLVE: number };
declare const GPUMapMode: { READ: number };

/** A recorded program: its name (the program's class or kernel name), what it computes, and workgroups. */
export interface TimedDispatch {
  name: string;
  /** e.g. its output's shape ('4096x128'), a matmul's M x N x K. */
  detail: string;
  /** A matmul's floating-point operations (2 M N K); 0 where not counted. */
  flops: number;
  x: number;
  y: number;
  z: number;
}

export interface ProgramTime {
  name: string;
  detail: string;
  flops: number;
  /** Its place among the pass's programs (0-based). */
  index: number;
  workgroups: number;
  us: number;
}

export interface PassProfile {
  /** The pass on the device, first program's start to last program's end (median, us). */
  deviceUs: number;
  /** Each program alone (median of the 'each' replays). */
  programs: ProgramTime[];
  /** Replays timed of each kind. */
  runs: number;
}

/** WebGPU's limit on a query set's size. */
const MAX_QUERIES = 4096;

/** How a profiled replay encodes its compute passes (webgpu-record.ts Recorder.replay). */
export interface PassTiming {
  /** Every program in a pass of its own. */
  readonly split: boolean;
  /** Before the encoding: what the device finds wrong from here to collect() is the profile's error. */
  begin(): void;
  /** The descriptor of the compute pass that starts with dispatch number k. */
  pass(k: number, lastPassStart: boolean): object | undefined;
  /** After the last pass: the stamps resolved and copied for reading. */
  end(enc: any): void;
  /** After the submit: read the stamps back. */
  collect(): void;
}

/**
 * Times the replays of the first recording it is handed (Recorder.profileReplays): 'whole' and
 * 'each' in turn. A replay of another recording, or of one without programs, is not timed.
 */
export class PassProfiler {
  private readonly whole: number[] = [];
  private readonly each: number[][] = [];
  private readonly pending: Promise<void>[] = [];
  private key: string | null = null;
  private dispatches: TimedDispatch[] | null = null;
  private sets: any[] = [];
  private resolveBuf: GPUBuffer = null;
  private turn = 0;
  /** The first error the device reported for a profiled replay. */
  private error: string | null = null;

  constructor(private readonly device: any) {}

  /** The timing of the next replay of the recording of this key; null: not timed (another key, an error). */
  next(key: string, list: () => TimedDispatch[]): PassTiming | null {
    if (this.error || (this.key !== null && this.key !== key)) return null;
    let dispatches = this.dispatches;
    if (dispatches === null) {
      this.key = key;
      dispatches = this.dispatches = list();
      if (dispatches.length === 0) return null;
      const n = Math.ceil((2 * dispatches.length) / MAX_QUERIES);
      for (let s = 0; s < n; s++) {
        const count = Math.min(MAX_QUERIES, 2 * dispatches.length - s * MAX_QUERIES);
        this.sets.push(this.device.createQuerySet({ type: 'timestamp', count }));
      }
      this.resolveBuf = this.device.createBuffer({
        size: Math.max(8, 16 * dispatches.length),
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
    }
    if (dispatches.length === 0) return null;
    const split = this.turn++ % 2 === 1;
    const n = split ? 2 * dispatches.length : 2;
    const at = (q: number) => ({ querySet: this.sets[Math.floor(q / MAX_QUERIES)], index: q % MAX_QUERIES });
    const read = this.device.createBuffer({ size: 8 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    return {
      split,
      pass: (k, lastPassStart) => {
        if (split) {
          const b = at(2 * k);
          return {
            timestampWrites: {
              querySet: b.querySet,
              beginningOfPassWriteIndex: b.index,
              endOfPassWriteIndex: b.index + 1,
            },
          };
        }
        if (k > 0 && !lastPassStart) return undefined;
        const w: Record<string, unknown> = { querySet: this.sets[0] };
        if (k === 0) w.beginningOfPassWriteIndex = 0;
        if (lastPassStart) w.endOfPassWriteIndex = 1;
        return { timestampWrites: w };
      },
      end: (enc) => {
        for (let q = 0; q < n; q += MAX_QUERIES) {
          const count = Math.min(MAX_QUERIES, n - q);
          enc.resolveQuerySet(this.sets[q / MAX_QUERIES], 0, count, this.resolveBuf, 8 * q);
        }
        enc.copyBufferToBuffer(this.resolveBuf, 0, read, 0, 8 * n);
      },
      begin: () => this.device.pushErrorScope('validation'),
      collect: () => {
        // An error the profile's passes caused is its own (the stage is not stopped for it): the
        // profile fails with it, and the replays after it are not timed.
        const read1 = async () => {
          const e: { message: string } | null = await this.device.popErrorScope();
          if (e) throw new Error(e.message.trim().split('\n')[0]);
          await read.mapAsync(GPUMapMode.READ);
          const t = new BigUint64Array(read.getMappedRange().slice(0));
          read.unmap();
          const span = (i: number) => Math.max(0, Number(t[2 * i + 1] - t[2 * i]) / 1000);
          if (split) this.each.push(Array.from({ length: n / 2 }, (_, i) => span(i)));
          else this.whole.push(span(0));
        };
        this.pending.push(
          read1()
            .catch((e: Error) => {
              this.error ??= e.message;
            })
            .finally(() => read.destroy()),
        );
      },
    };
  }

  /**
   * The medians of the replays timed so far; null where no replay of each kind was timed. Throws
   * (a plain Error) where the device found the profile's passes wrong.
   */
  async result(): Promise<PassProfile | null> {
    await Promise.all(this.pending);
    this.dispose();
    if (this.error) throw new Error(`the profile's passes: ${this.error}`);
    const d = this.dispatches;
    if (!d || this.whole.length === 0 || this.each.length === 0) return null;
    return {
      deviceUs: median(this.whole),
      programs: d.map((p, i) => ({
        name: p.name,
        detail: p.detail,
        flops: p.flops,
        index: i,
        workgroups: p.x * p.y * p.z,
        us: median(this.each.map((run) => run[i])),
      })),
      runs: Math.min(this.whole.length, this.each.length),
    };
  }

  dispose(): void {
    for (const s of this.sets) s.destroy();
    this.sets = [];
    this.resolveBuf?.destroy();
    this.resolveBuf = null;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface KindTime {
  kind: string;
  programs: number;
  us: number;
  /** Its share of the programs' summed time. */
  share: number;
  minWorkgroups: number;
  maxWorkgroups: number;
  /** Its programs' flops (matmuls'), summed. */
  flops: number;
}

/** A profile's program times summed by kind (name), the slowest kind first. */
export function timeByKind(p: PassProfile): KindTime[] {
  const total = p.programs.reduce((s, x) => s + x.us, 0);
  const by = new Map<string, KindTime>();
  for (const x of p.programs) {
    const k = by.get(x.name) ?? {
      kind: x.name,
      programs: 0,
      us: 0,
      share: 0,
      minWorkgroups: Infinity,
      maxWorkgroups: 0,
      flops: 0,
    };
    k.programs++;
    k.us += x.us;
    k.minWorkgroups = Math.min(k.minWorkgroups, x.workgroups);
    k.maxWorkgroups = Math.max(k.maxWorkgroups, x.workgroups);
    k.flops += x.flops;
    by.set(x.name, k);
  }
  const out = [...by.values()].sort((a, b) => b.us - a.us);
  for (const k of out) k.share = total > 0 ? k.us / total : 0;
  return out;
}
