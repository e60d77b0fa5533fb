import type { Decision } from "../core/decision.js";

/**
 * A session recording: append-only, one JSON object per line, written while the session runs
 * (buffered, flushed at least every 200 ms, so a crash loses at most that). It stores what
 * the agent saw — masked values, never the originals.
 */
export type RecordingEntry =
  | {
      readonly t: number; // ms since session start
      readonly kind: "header";
      readonly sessionId: string;
      readonly protocol: string;
      readonly connection: string;
      readonly principal: string;
      readonly startedAt: string; // ISO-8601
      readonly version: 1;
    }
  | {
      readonly t: number;
      readonly kind: "query";
      readonly seq: number;
      readonly stage: string;
      readonly sql: string;
      readonly statementName?: string;
      /** Bind parameters of a statement decided at Bind (held for approval), as shown to approvers. */
      readonly params?: readonly (string | null)[];
      readonly decision: Decision["type"];
      readonly rule?: string;
      readonly message?: string;
    }
  | {
      readonly t: number;
      readonly kind: "result";
      readonly seq: number;
      readonly resultKind: "simple" | "execute";
      readonly params?: readonly (string | null)[];
      readonly commandTag?: string;
      readonly rowCount: number;
      readonly columns?: readonly string[];
      readonly rows?: readonly (readonly (string | null)[])[];
      readonly rowsTruncated?: boolean;
      readonly error?: { readonly sqlstate: string; readonly message: string };
      readonly durationMs: number;
      readonly masked?: Readonly<Record<string, number>>;
      readonly rowsSent?: number;
    }
  | {
      readonly t: number;
      readonly kind: "end";
      readonly reason: string;
      readonly detail?: string;
    };

/** Distributes `Omit` over the union so each entry keeps its own fields. */
export type RecordingInput = RecordingEntry extends infer E ? (E extends RecordingEntry ? Omit<E, "t"> : never) : never;

export interface SessionRecorder {
  /** Append an entry; never blocks the data path (buffered, flushed on a timer). */
  append(entry: RecordingInput): void;
  /** Flush and close. Idempotent. */
  close(): Promise<void>;
}

export interface RecordingStore {
  open(sessionId: string): SessionRecorder;
  /** Read a recording back (entries in order). Undefined when there is none. */
  read(sessionId: string): Promise<readonly RecordingEntry[] | undefined>;
  close(): Promise<void>;
}
