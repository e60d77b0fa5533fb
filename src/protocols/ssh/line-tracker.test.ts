import { describe, expect, it } from "vitest";
import { LineTracker, type TrackerOutput } from "./line-tracker.js";

const lines = (outs: TrackerOutput[]): { line: string; edited: boolean }[] =>
  outs.flatMap((o) => (o.kind === "line" ? [{ line: o.line, edited: o.edited }] : []));
const passed = (outs: TrackerOutput[]): string => outs.map((o) => (o.kind === "pass" ? o.bytes.toString("latin1") : "")).join("");

describe("LineTracker", () => {
  it("yields typed lines at Enter and passes everything else through", () => {
    const t = new LineTracker();
    const out = t.feed(Buffer.from("ls -la\rpwd\n"));
    expect(lines(out)).toEqual([{ line: "ls -la", edited: false }, { line: "pwd", edited: false }]);
    expect(passed(out)).toBe("ls -lapwd");
  });

  it("follows backspace, Ctrl-U, Ctrl-W and Ctrl-C", () => {
    const t = new LineTracker();
    expect(lines(t.feed(Buffer.from("rmx\x7f\x7f\x7fls\r")))).toEqual([{ line: "ls", edited: false }]);
    expect(lines(t.feed(Buffer.from("rm -rf /\x15echo hi\r")))).toEqual([{ line: "echo hi", edited: false }]);
    expect(lines(t.feed(Buffer.from("echo a rm\x17b\r")))).toEqual([{ line: "echo a b", edited: false }]);
    expect(lines(t.feed(Buffer.from("rm\x03ls\r")))).toEqual([{ line: "ls", edited: false }]);
  });

  it("marks lines edited with keys it cannot follow, but not bracketed paste", () => {
    const t = new LineTracker();
    expect(lines(t.feed(Buffer.from("\x1b[Arm\r")))).toEqual([{ line: "rm", edited: true }]);
    expect(lines(t.feed(Buffer.from("r\tx\r")))).toEqual([{ line: "rx", edited: true }]);
    expect(lines(t.feed(Buffer.from("\x1b[200~echo pasted\x1b[201~\r")))).toEqual([{ line: "echo pasted", edited: false }]);
    expect(lines(t.feed(Buffer.from("\x01rm\r")))).toEqual([{ line: "rm", edited: true }]);
    expect(lines(t.feed(Buffer.from("\x04\x0cls\r")))).toEqual([{ line: "ls", edited: false }]);
    expect(lines(t.feed(Buffer.from("ls\x04\r")))).toEqual([{ line: "ls", edited: true }]);
  });

  it("gives the same lines however the input is split, UTF-8 included", () => {
    const input = Buffer.from("echo héllo wörld\r\x1b[Dls\rcat ünï\n");
    const whole = lines(new LineTracker().feed(input));
    for (let i = 1; i < input.length; i++) {
      const t = new LineTracker();
      expect([...lines(t.feed(input.subarray(0, i))), ...lines(t.feed(input.subarray(i)))]).toEqual(whole);
    }
    expect(whole[0]).toEqual({ line: "echo héllo wörld", edited: false });
  });
});
