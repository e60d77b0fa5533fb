import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { analyzeShell, initShellParser } from "./analyze.js";

beforeAll(async () => {
  await initShellParser();
});

/** Found as a program (or the command is refused as unknowable / unparsable). */
async function caught(command: string, program: string): Promise<boolean> {
  const a = await analyzeShell(command);
  if (!a.ok || a.unknowable.length > 0) return true;
  return a.commands.some((c) => c.name === program);
}

const singleQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const doubleQuote = (s: string): string => `"${s.replace(/(["\\$`])/g, "\\$1")}"`;

/**
 * Ways to run a command that must never hide it. Program wrappers (sudo, env, xargs, …) run a
 * simple command, not shell syntax: they only wrap simple commands; the rest wrap anything.
 */
const PROGRAM_WRAPS: readonly ((c: string) => string)[] = [
  (c) => `sudo ${c}`,
  (c) => `sudo -u root -- ${c}`,
  (c) => `env FOO=1 ${c}`,
  (c) => `nice -n 5 ${c}`,
  (c) => `timeout 5 ${c}`,
  (c) => `nohup ${c}`,
  (c) => `xargs ${c} < /dev/null`,
  (c) => `find . -exec ${c} \\;`,
  (c) => `stdbuf -o0 ${c}`,
  (c) => `command ${c}`,
  (c) => `exec ${c}`,
];

const WRAPS: readonly ((c: string) => string)[] = [
  (c) => `bash -c ${singleQuote(c)}`,
  (c) => `sh -c ${doubleQuote(c)}`,
  (c) => `echo $( ${c} )`,
  (c) => `echo \`${c.replace(/([\\`$])/g, "\\$1")}\``,
  (c) => `( ${c} )`,
  (c) => `{ ${c}; }`,
  (c) => `true && ${c}`,
  (c) => `false || ${c}`,
  (c) => `ls | ${c}`,
  (c) => `if true; then ${c}; fi`,
  (c) => `for i in 1; do ${c}; done`,
  (c) => `watch ${singleQuote(c)}`,
  (c) => `ssh host ${singleQuote(c)}`,
  (c) => `su -c ${singleQuote(c)} root`,
  (c) => `cat <(${c})`,
];

const NAMES: readonly ((p: string) => string)[] = [(p) => p, (p) => `/bin/${p}`, (p) => `\\${p}`, (p) => `"${p}"`, (p) => `'${p.slice(0, 1)}'${p.slice(1)}`, (p) => `/usr/bin/../bin/${p}`];

describe("shell analysis properties", () => {
  it("finds a program however it is wrapped", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...NAMES),
        fc.array(fc.constantFrom(...PROGRAM_WRAPS), { maxLength: 3 }),
        fc.array(fc.constantFrom(...WRAPS), { maxLength: 4 }),
        async (name, programWraps, wraps) => {
        let command = `${name("rm")} -rf /tmp/x`;
        for (const w of programWraps) command = w(command);
        for (const w of wraps) command = w(command);
        expect(await caught(command, "rm")).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("never throws or hangs on arbitrary input", async () => {
    const shellish = fc.stringMatching(/^[ a-z$(){}`'"\\;&|<>#=*?[\]!\n-]{0,60}$/);
    await fc.assert(
      fc.asyncProperty(fc.oneof(shellish, fc.string({ maxLength: 60 })), async (text) => {
        const a = await analyzeShell(text);
        expect(typeof a.ok).toBe("boolean");
      }),
      { numRuns: 500 },
    );
  });
});
