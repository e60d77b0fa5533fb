import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import type { BudgetCounterStore } from "../store/budgets.js";
import { McpCallLimiter, SharedMcpCallLimiter } from "./mcp-limits.js";

const MINUTE = 60_000;
const limits = [{ tools: ["search*"], calls: 5, perMs: MINUTE }];

describe("MCP call limits shared through the store (real SQLite store)", () => {
  let dir: string;
  let store: Store;
  let counters: BudgetCounterStore;
  // A minute of now, 1 s in (windows that ended over 32 days ago are pruned by the store).
  const t0 = Math.floor(Date.now() / MINUTE) * MINUTE + 1_000;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "airlock-mcp-limits-"));
    store = await openStore({ dataDir: dir, embedded: "sqlite" });
    if (store.budgets === undefined) throw new Error("the SQLite store keeps counters");
    counters = store.budgets;
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("two gateways share one principal × tool window; a third (a restart) starts from the stored total", async () => {
    const a = new SharedMcpCallLimiter(counters, { flushMs: 60_000 });
    const b = new SharedMcpCallLimiter(counters, { flushMs: 60_000 });
    try {
      for (let i = 0; i < 3; i++) expect(a.take(limits, "sa:x", "files", "search", true, t0 + i)).toBeUndefined();
      await a.flush(t0 + 10);
      // B has not read the window yet: its first call counts locally, then its flush reads A's 3.
      expect(b.take(limits, "sa:x", "files", "search", true, t0 + 20)).toBeUndefined();
      await b.flush(t0 + 30);
      expect(b.take(limits, "sa:x", "files", "search", true, t0 + 40)).toBeUndefined();
      expect(b.take(limits, "sa:x", "files", "search", true, t0 + 50)).toBe(limits[0]);
      // Other principals, tools outside the limit and other connections are not affected.
      expect(b.take(limits, "sa:y", "files", "search", true, t0 + 60)).toBeUndefined();
      expect(b.take(limits, "sa:x", "other", "search", true, t0 + 60)).toBeUndefined();
      expect(b.take(limits, "sa:x", "files", "read_file", true, t0 + 60)).toBeUndefined();
      await b.flush(t0 + 70);
      await a.flush(t0 + 80);
      expect(a.take(limits, "sa:x", "files", "search", true, t0 + 90)).toBe(limits[0]);
      const c = new SharedMcpCallLimiter(counters, { flushMs: 60_000 });
      try {
        c.take(limits, "sa:x", "files", "search", false, t0 + 100); // a look (preview) spends nothing
        await c.flush(t0 + 110);
        expect(c.take(limits, "sa:x", "files", "search", true, t0 + 120)).toBe(limits[0]);
      } finally {
        await c.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("calls a flush is sending still count while the store has not answered", async () => {
    let release: () => void = () => undefined;
    let hold = true;
    const slow: BudgetCounterStore = {
      ...counters,
      add: async (entries) => {
        if (hold) await new Promise<void>((r) => (release = r));
        return counters.add(entries);
      },
    };
    const l = new SharedMcpCallLimiter(slow, { flushMs: 60_000 });
    try {
      for (let i = 0; i < 5; i++) expect(l.take(limits, "sa:inflight", "files", "search", true, t0 + i)).toBeUndefined();
      const flushing = l.flush(t0 + 10);
      // The five are on their way to the store: the sixth is still refused.
      expect(l.take(limits, "sa:inflight", "files", "search", true, t0 + 20)).toBe(limits[0]);
      hold = false;
      release();
      await flushing;
      expect(l.take(limits, "sa:inflight", "files", "search", true, t0 + 30)).toBe(limits[0]);
    } finally {
      hold = false;
      release();
      await l.close();
    }
  });

  it("the window slides: the previous window's calls weigh by how much of it is still inside the last perMs", async () => {
    const l = new SharedMcpCallLimiter(counters, { flushMs: 60_000 });
    try {
      for (let i = 0; i < 5; i++) expect(l.take(limits, "sa:slide", "files", "search", true, t0 + i)).toBeUndefined();
      expect(l.take(limits, "sa:slide", "files", "search", true, t0 + 10)).toBe(limits[0]);
      await l.flush(t0 + 20);
      const next = t0 - 1_000 + MINUTE; // the next window's start: all 5 still count
      expect(l.take(limits, "sa:slide", "files", "search", true, next + 1)).toBe(limits[0]);
      // Half-way through the next window 2.5 of them count: two more calls fit, a third does not.
      const half = next + MINUTE / 2;
      expect(l.take(limits, "sa:slide", "files", "search", true, half)).toBeUndefined();
      expect(l.take(limits, "sa:slide", "files", "search", true, half + 1)).toBeUndefined();
      expect(l.take(limits, "sa:slide", "files", "search", true, half + 2)).toBe(limits[0]);
    } finally {
      await l.close();
    }
  });

  it("a store that fails keeps the counts and sends them at the next flush", async () => {
    let fail = true;
    const flaky: BudgetCounterStore = {
      add: (entries) => (fail ? Promise.reject(new Error("store down")) : counters.add(entries)),
    };
    const errors: unknown[] = [];
    const l = new SharedMcpCallLimiter(flaky, { flushMs: 60_000, onSyncError: (e) => errors.push(e) });
    const other = new SharedMcpCallLimiter(counters, { flushMs: 60_000 });
    try {
      for (let i = 0; i < 4; i++) expect(l.take(limits, "sa:flaky", "files", "search", true, t0 + i)).toBeUndefined();
      await l.flush(t0 + 10);
      expect(errors).toHaveLength(1);
      fail = false;
      await l.flush(t0 + 20);
      other.take(limits, "sa:flaky", "files", "search", false, t0 + 30);
      await other.flush(t0 + 40);
      expect(other.take(limits, "sa:flaky", "files", "search", true, t0 + 50)).toBeUndefined();
      expect(other.take(limits, "sa:flaky", "files", "search", true, t0 + 60)).toBe(limits[0]);
    } finally {
      await l.close();
      await other.close();
    }
  });
});

describe("MCP call limits in memory", () => {
  it("a limit keeps its counts when the policies are reloaded in another order (keyed by the limit, not its index)", () => {
    const l = new McpCallLimiter();
    const other = { tools: ["read*"], calls: 9, perMs: MINUTE };
    const one = { tools: ["search*"], calls: 1, perMs: MINUTE };
    expect(l.take([other, one], "p", "c", "search", true, 0)).toBeUndefined();
    expect(l.take([one, other], "p", "c", "search", true, 1)).toBe(one);
  });
});
