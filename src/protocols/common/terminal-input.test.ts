import { describe, expect, it } from "vitest";
import type { Decision } from "../../core/decision.js";
import { terminalInput } from "./terminal-input.js";

/** A terminal whose policy refuses any line that mentions `rm`. */
function harness(terminal: boolean) {
  const target: string[] = [];
  const notices: string[] = [];
  const judged: string[] = [];
  const shown: string[] = [];
  const t = terminalInput({
    terminal,
    toTarget: (b) => target.push(b.toString("latin1")),
    toTerminal: (b) => shown.push(b.toString("latin1")),
    notice: (text) => notices.push(text),
    marker: () => undefined,
    judge: (line) => {
      judged.push(line);
      const d: Decision = /\brm\b/.test(line) ? { type: "deny", message: "rm is not allowed here", code: "GW_POLICY_DENIED" } : { type: "allow" };
      return Promise.resolve(d);
    },
  });
  return { t, target: () => target.join(""), notices, judged, shown };
}

describe("terminalInput at a terminal", () => {
  it("erases a refused line instead of interrupting, and keeps lines typed ahead", async () => {
    const h = harness(true);
    await h.t.input(Buffer.from("echo a\rrm -f x\recho b\r"));
    expect(h.target()).toBe("echo a\rrm -f x\x05\x15echo b\r");
    expect(h.notices).toEqual(["airlock: rm is not allowed here"]);
  });

  it("shows the current output line again under a refusal", async () => {
    const h = harness(true);
    h.t.output(Buffer.from("motd\r\nuser@host:~$ "));
    await h.t.input(Buffer.from("rm x\r"));
    expect(h.shown).toEqual(["user@host:~$ "]);
  });

  it("judges a line inside an unfinished construct on its own, and the whole command at its end", async () => {
    const h = harness(true);
    await h.t.input(Buffer.from("for i in 1; do\rrm -f x\recho $i\rdone\r"));
    expect(h.judged).toEqual(["rm -f x", "echo $i", "for i in 1; do\necho $i\ndone"]);
    expect(h.target()).toBe("for i in 1; do\rrm -f x\x05\x15echo $i\rdone\r");
  });

  it("cancels a whole multi-line command with Ctrl-C when its last line makes it refused", async () => {
    const h = harness(true);
    await h.t.input(Buffer.from("for f in rm; do\recho $f\rdone\r"));
    expect(h.target().endsWith("done\x03")).toBe(true);
  });

  it("forgets the collected lines at Ctrl-C, so later lines are judged on their own", async () => {
    const h = harness(true);
    await h.t.input(Buffer.from("echo 'open\r\x03ls'\r"));
    // "ls'" alone is an unfinished quote: collected, not joined to the cancelled "echo 'open".
    expect(h.judged).toEqual([]);
    await h.t.input(Buffer.from("'\r"));
    expect(h.judged).toEqual(["ls'\n'"]);
  });
});

describe("terminalInput without a terminal", () => {
  it("holds an unfinished command and drops it whole when refused", async () => {
    const h = harness(false);
    await h.t.input(Buffer.from("for i in 1; do\nrm -f x\ndone\necho ok\n"));
    expect(h.target()).toBe("echo ok\n");
    expect(h.judged).toEqual(["for i in 1; do\nrm -f x\ndone", "echo ok"]);
  });

  it("judges a last line without Enter when input ends", async () => {
    const h = harness(false);
    await h.t.input(Buffer.from("echo one; rm x"));
    await h.t.atEnd();
    expect(h.target()).toBe("");
    expect(h.notices).toEqual(["airlock: rm is not allowed here"]);
  });
});
