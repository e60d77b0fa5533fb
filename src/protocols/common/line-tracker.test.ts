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
    // Shells disagree on what Ctrl-W deletes (readline: up to a space or tab; zsh: WORDCHARS).
    expect(lines(t.feed(Buffer.from("echo a rm\x17b\r")))).toEqual([{ line: "echo a b", edited: true }]);
    expect(lines(t.feed(Buffer.from("rm\x03ls\r")))).toEqual([{ line: "ls", edited: false }]);
  });

  it("yields Ctrl-C, and Ctrl-D on an empty line, as cancels (the shell drops an unfinished command)", () => {
    const t = new LineTracker();
    const out = t.feed(Buffer.from("for i in 1; do\rrm x\x03ls\r\x04"));
    expect(out.map((o) => o.kind)).toEqual(["pass", "line", "pass", "cancel", "pass", "line", "cancel"]);
    expect(lines(out)).toEqual([{ line: "for i in 1; do", edited: false }, { line: "ls", edited: false }]);
    expect(out.filter((o) => o.kind === "cancel").map((o) => o.bytes.toString("latin1"))).toEqual(["\x03", "\x04"]);
    // Without a PTY both are bytes of the line.
    const raw = new LineTracker(undefined, { pty: false });
    expect(raw.feed(Buffer.from("a\x03\x04\n")).map((o) => o.kind)).toEqual(["pass", "line"]);
  });

  it("holds back keys it cannot follow like Enter, as edited lines, but not bracketed paste", () => {
    const t = new LineTracker();
    expect(lines(t.feed(Buffer.from("\x1b[Arm\r")))).toEqual([{ line: "", edited: true }, { line: "rm", edited: false }]);
    expect(lines(t.feed(Buffer.from("r\tx\r")))).toEqual([{ line: "r", edited: true }, { line: "x", edited: false }]);
    expect(lines(t.feed(Buffer.from("\x1b[200~echo pasted\x1b[201~\r")))).toEqual([{ line: "echo pasted", edited: false }]);
    expect(lines(t.feed(Buffer.from("\x01rm\r")))).toEqual([{ line: "", edited: true }, { line: "rm", edited: false }]);
    expect(lines(t.feed(Buffer.from("\x04\x0cls\r")))).toEqual([{ line: "ls", edited: false }]);
    expect(lines(t.feed(Buffer.from("ls\x04\r")))).toEqual([{ line: "ls", edited: true }, { line: "", edited: false }]);
  });

  // Second bypass corpus: keys that run the line without Enter, or edit it differently.
  it("never forwards a key that may run the line before the line is judged (Ctrl-O, Ctrl-X Ctrl-E)", () => {
    const t = new LineTracker();
    const out = t.feed(Buffer.from("rm x\x0f"));
    expect(passed(out)).toBe("rm x");
    expect(out.at(-1)).toEqual({ kind: "line", line: "rm x", edited: true, enter: Buffer.from("\x0f") });
    const out2 = t.feed(Buffer.from("rm x\x18\x05"));
    expect(passed(out2)).toBe("rm x");
    expect(lines(out2)).toEqual([{ line: "rm x", edited: true }, { line: "", edited: true }]);
  });

  it("holds an escape sequence split across chunks until it is complete", () => {
    const t = new LineTracker();
    expect(t.feed(Buffer.from("ls\x1b["))).toEqual([{ kind: "pass", bytes: Buffer.from("ls") }]);
    expect(t.feed(Buffer.from("A"))).toEqual([{ kind: "line", line: "ls", edited: true, enter: Buffer.from("\x1b[A") }]);
    // bracketed paste markers pass at once
    expect(passed(t.feed(Buffer.from("\x1b[200~x\x1b[201~")))).toBe("\x1b[200~x\x1b[201~");
  });

  it("marks Ctrl-W over non-blank Unicode space and Backspace over non-ASCII text as edited", () => {
    const t = new LineTracker();
    // readline's Ctrl-W treats NBSP as part of the word: "echo\u00a0y" goes entirely.
    expect(lines(t.feed(Buffer.from("echo\u00a0y\x17rm x\r")))).toEqual([{ line: "rm x", edited: true }]);
    // readline deletes a combining mark with its base character.
    expect(lines(t.feed(Buffer.from("rX\u0301\x7fm x\r")))).toEqual([{ line: "rXm x", edited: true }]);
    expect(lines(t.feed(Buffer.from("lsx\x7f\r")))).toEqual([{ line: "ls", edited: false }]);
  });

  it("without a PTY keeps every byte but Enter in the line (no line editor runs)", () => {
    const t = new LineTracker(undefined, { pty: false });
    expect(lines(t.feed(Buffer.from("rm x;\x7f\x7f\x7f\x7f\x7f\n")))).toEqual([{ line: "rm x;\x7f\x7f\x7f\x7f\x7f", edited: false }]);
    expect(lines(t.feed(Buffer.from("rm x;\x15\x03\x1b[A\n")))).toEqual([{ line: "rm x;\x15\x03\x1b[A", edited: false }]);
    expect(passed(t.feed(Buffer.from("ls\x7f")))).toBe("ls\x7f");
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
