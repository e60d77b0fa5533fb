import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PLAIN } from "./sql-effects.js";
import { StatementTimer, formatDuration, timeoutMessage } from "./statement-timer.js";
import { TargetModel, newExecution } from "./target-model.js";

const limit = { ms: 1000, rule: "short" };

function setup(): { model: TargetModel; timer: StatementTimer; cancels: () => number } {
  const model = new TargetModel();
  let n = 0;
  const timer = new StatementTimer({ limit, model, logger: pino({ level: "silent" }), cancel: () => {
    n++;
  } });
  return { model, timer, cancels: () => n };
}

describe("StatementTimer", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("cancels a statement that runs past the limit, once, and marks it with the rule", () => {
    const { model, timer, cancels } = setup();
    const exec = newExecution("simple", 1, false, undefined);
    model.simple(exec, [PLAIN]);
    timer.check();
    vi.advanceTimersByTime(999);
    expect(cancels()).toBe(0);
    vi.advanceTimersByTime(2);
    expect(cancels()).toBe(1);
    expect(exec.timedOut).toEqual({ message: timeoutMessage(limit), rule: "short" });
    timer.check();
    vi.advanceTimersByTime(5000);
    expect(cancels()).toBe(1);
  });

  it("restarts the clock when the target answers (pipelined statements are timed one by one)", () => {
    const { model, timer, cancels } = setup();
    const a = newExecution("execute", 1, false, undefined);
    const b = newExecution("execute", 2, false, undefined);
    model.execute("", a);
    model.execute("", b);
    model.sync();
    timer.check();
    vi.advanceTimersByTime(800);
    model.current();
    model.completed("complete"); // a ends; b starts now on the target
    timer.check();
    vi.advanceTimersByTime(800);
    expect(cancels()).toBe(0);
    vi.advanceTimersByTime(300);
    expect(cancels()).toBe(1);
    expect(a.timedOut).toBeUndefined();
    expect(b.timedOut?.rule).toBe("short");
  });

  it("does not time an idle session, nor a statement that ended before the timer ran", () => {
    const { model, timer, cancels } = setup();
    timer.check();
    vi.advanceTimersByTime(5000);
    expect(cancels()).toBe(0);
    const exec = newExecution("simple", 1, false, undefined);
    model.simple(exec, [PLAIN]);
    timer.check();
    vi.advanceTimersByTime(500);
    model.current();
    model.completed("complete");
    model.ready("I");
    // No check() after the answer (the timer fires first): it must notice the statement ended.
    vi.advanceTimersByTime(5000);
    expect(cancels()).toBe(0);
    expect(exec.timedOut).toBeUndefined();
  });

  it("never cancels a refusal travelling through the target, and stops with the session", () => {
    const { model, timer, cancels } = setup();
    model.simple(newExecution("simple", 0, true, undefined), [PLAIN]);
    timer.check();
    vi.advanceTimersByTime(5000);
    expect(cancels()).toBe(0);
    const { model: m2, timer: t2, cancels: c2 } = setup();
    m2.simple(newExecution("simple", 1, false, undefined), [PLAIN]);
    t2.check();
    t2.stop();
    vi.advanceTimersByTime(5000);
    expect(c2()).toBe(0);
  });

  it("formats the limit as people write it", () => {
    expect(formatDuration(30_000)).toBe("30s");
    expect(formatDuration(1500)).toBe("1.5s");
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(120_000)).toBe("2min");
    expect(timeoutMessage({ ms: 30_000, rule: "session-limits" })).toBe("airlock: statement timeout (30s) exceeded (rule: session-limits); the statement was cancelled");
  });
});
