/**
 * Per-kind counts of masked values, for the audit record (never values). Every masking API
 * adds to a CountSink; engines keep a plain record per result or session.
 */

/**
 * Where a masker adds its per-kind counts. `MaskCounts` is one; `RecordSink` adds into a plain
 * record, so that nothing is allocated per clean value on the hot path.
 */
export interface CountSink {
  add(kind: string, n?: number): void;
}

/** Per-kind counts of masked values, for the audit record. Never holds values. */
export class MaskCounts implements CountSink {
  private readonly counts = new Map<string, number>();

  add(kind: string, n = 1): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
  }

  addAll(counts: Readonly<Record<string, number>>): void {
    for (const [kind, n] of Object.entries(counts)) this.add(kind, n);
  }

  get(kind: string): number {
    return this.counts.get(kind) ?? 0;
  }

  get total(): number {
    let t = 0;
    for (const n of this.counts.values()) t += n;
    return t;
  }

  isEmpty(): boolean {
    return this.counts.size === 0;
  }

  /** A plain snapshot, keys sorted. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const kind of [...this.counts.keys()].sort()) out[kind] = this.counts.get(kind) ?? 0;
    return out;
  }

  clear(): void {
    this.counts.clear();
  }
}

/**
 * Adds counts straight into the record the caller passes for the current value: one instance
 * per masker, retargeted per call, so a clean value costs no allocation and no clearing
 * (clearing a Map per value showed as the largest item in profiles of masked streams).
 */
export class RecordSink implements CountSink {
  target: Record<string, number> = {};
  add(kind: string, n = 1): void {
    this.target[kind] = (this.target[kind] ?? 0) + n;
  }
}

/** Add `from`'s counts into `into`. */
export function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const k in from) into[k] = (into[k] ?? 0) + (from[k] ?? 0);
}
