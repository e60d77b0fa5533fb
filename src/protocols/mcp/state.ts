/**
 * What the MCP server keeps between tool calls, bounded: continuation cursors (the rest of a
 * result, already masked by the gateway) and calls waiting for approval (so that `wait_approval`
 * can return their result). Both are keyed by random ids and belong to the principal that made
 * them: another principal asking for them is told they do not exist.
 */
import { randomBytes } from "node:crypto";
import type { Envelope } from "./envelope.js";

interface Owned {
  readonly principalId: string;
  readonly expiresAt: number;
}

export interface CursorEntry extends Owned {
  readonly connection: string;
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly (string | null)[])[];
  offset: number;
  readonly pageSize: number;
  /** The gateway stopped reading at the MCP server's cap: more rows exist than the cursor holds. */
  readonly truncated: boolean;
}

export interface PendingCall extends Owned {
  readonly connection: string;
  /** Settles with the envelope once a person has decided (wait mode: the held statement itself ran or was refused). */
  readonly result?: Promise<Envelope>;
  /** Async mode: run the identical call again once approved (the approval is used by that re-send). */
  readonly rerun?: () => Promise<Envelope>;
  /** Set once the result has been handed out (a wait mode result is the statement's one run). */
  delivered?: Envelope;
}

const CURSOR_TTL_MS = 10 * 60_000;
const MAX_CURSORS = 1_000;
const MAX_PENDING = 1_000;

class Bounded<T extends Owned> {
  readonly #items = new Map<string, T>();
  constructor(readonly max: number) {}

  put(id: string, item: T): void {
    this.sweep();
    while (this.#items.size >= this.max) {
      const oldest = this.#items.keys().next();
      if (oldest.done === true) break;
      this.#items.delete(oldest.value);
    }
    this.#items.set(id, item);
  }

  get(id: string, principalId: string): T | undefined {
    const item = this.#items.get(id);
    if (item === undefined || item.principalId !== principalId) return undefined;
    if (item.expiresAt < Date.now()) {
      this.#items.delete(id);
      return undefined;
    }
    return item;
  }

  delete(id: string): void {
    this.#items.delete(id);
  }

  sweep(): void {
    const now = Date.now();
    for (const [id, item] of this.#items) if (item.expiresAt < now) this.#items.delete(id);
  }
}

export class McpState {
  readonly cursors = new Bounded<CursorEntry>(MAX_CURSORS);
  readonly pending = new Bounded<PendingCall>(MAX_PENDING);

  newCursor(entry: Omit<CursorEntry, "expiresAt">): string {
    const id = `cur_${randomBytes(16).toString("base64url")}`;
    this.cursors.put(id, { ...entry, expiresAt: Date.now() + CURSOR_TTL_MS });
    return id;
  }

  addPending(approvalId: string, call: Omit<PendingCall, "expiresAt">, expiresAt: Date | undefined): void {
    // Kept a while past the request's own expiry, so that its outcome can still be asked for.
    const until = (expiresAt?.getTime() ?? Date.now() + 60 * 60_000) + 10 * 60_000;
    this.pending.put(approvalId, { ...call, expiresAt: until });
  }
}
