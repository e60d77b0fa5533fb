import { describe, expect, it, vi } from "vitest";
import { PreAuthGate } from "./live.js";

describe("PreAuthGate", () => {
  it("caps per source address and in total, and frees a slot on release", () => {
    const gate = new PreAuthGate({ maxTotal: 3, maxPerAddress: 2, timeoutMs: 60_000 });
    const a1 = gate.acquire("10.0.0.1", () => undefined);
    const a2 = gate.acquire("::ffff:10.0.0.1", () => undefined);
    expect(a1).toBeDefined();
    expect(a2).toBeDefined();
    // A third from the same address (IPv4-mapped counts as IPv4) is refused; another address is not.
    expect(gate.acquire("10.0.0.1", () => undefined)).toBeUndefined();
    const b1 = gate.acquire("10.0.0.2", () => undefined);
    expect(b1).toBeDefined();
    // Total reached.
    expect(gate.acquire("10.0.0.3", () => undefined)).toBeUndefined();
    a1?.release();
    a1?.release(); // idempotent: frees one slot, not two
    expect(gate.size).toBe(2);
    expect(gate.acquire("10.0.0.3", () => undefined)).toBeDefined();
    expect(gate.acquire("10.0.0.4", () => undefined)).toBeUndefined();
    a2?.release();
    b1?.release();
  });

  it("runs onExpire once at the deadline measured from acquire, and frees the slot", () => {
    vi.useFakeTimers();
    try {
      const gate = new PreAuthGate({ maxTotal: 10, maxPerAddress: 10, timeoutMs: 1000 });
      const expired = vi.fn();
      const slot = gate.acquire("10.0.0.1", expired);
      vi.advanceTimersByTime(600);
      expect(slot?.remainingMs()).toBe(400);
      vi.advanceTimersByTime(400);
      expect(expired).toHaveBeenCalledTimes(1);
      expect(gate.size).toBe(0);
      expect(slot?.remainingMs()).toBe(1);
      slot?.release();
      expect(gate.size).toBe(0);
      // Released before the deadline: never expires.
      const other = vi.fn();
      gate.acquire("10.0.0.1", other)?.release();
      vi.advanceTimersByTime(5000);
      expect(other).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });
});
