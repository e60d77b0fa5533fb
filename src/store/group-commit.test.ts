import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.js";

describe("GroupCommit", () => {
  it("flushes the first item at once and batches what arrives during a flush", async () => {
    const flushed: number[][] = [];
    let release: (() => void) | undefined;
    const g = new GroupCommit<number>(async (items) => {
      flushed.push([...items]);
      if (flushed.length === 1) await new Promise<void>((r) => (release = r));
    });
    const first = g.submit(1);
    const rest = [g.submit(2), g.submit(3), g.submit(4)];
    expect(flushed).toEqual([[1]]);
    release?.();
    await Promise.all([first, ...rest]);
    expect(flushed).toEqual([[1], [2, 3, 4]]);
  });

  it("rejects exactly the callers of a failed flush and keeps going", async () => {
    const g = new GroupCommit<number>((items) => (items.includes(2) ? Promise.reject(new Error("boom")) : Promise.resolve()));
    await expect(g.submit(2)).rejects.toThrow("boom");
    await expect(g.submit(3)).resolves.toBeUndefined();
  });
});
