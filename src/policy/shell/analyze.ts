/**
 * Shell command analysis for SSH guardrails: every program a command string may run, with its
 * arguments, looked through wrappers that run their arguments (./wrappers.ts), `sh -c`
 * strings (parsed recursively), substitutions and compound commands.
 *
 * Two parsers: `sh-syntax` (mvdan/sh, WASM) decides whether the text is valid bash at all
 * (what it rejects is refused); ./parse.ts extracts the commands. What either cannot follow,
 * and what cannot be known before it runs, lands in `unknowable` (the policy fails closed).
 *
 * Longer than ~500 lines on purpose: one recursive analysis (a command's words, its wrappers,
 * `sh -c` strings and substitutions feed back into each other); the parser (./parse.ts,
 * ./words.ts) and the wrapper table (./wrappers.ts) are already apart.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { getProcessor, LangVariant } from "sh-syntax";
import { DYNAMIC_MARK, MAX_DEPTH, parseScript, ShellParseError, type ArithmeticFacts, type RawCommand, type Word } from "./parse.js";
import { CODE_RUNNERS, hiddenCode, isStreamPath } from "./code-runners.js";
import { HIDDEN_RUNNERS, NON_RUNNERS, SHELLS, SUBCOMMAND_PROGRAMS, SUBCOMMAND_WRAPPERS, WRAPPERS, type WrapperSpec } from "./wrappers.js";

/** Longer command strings are refused (the analysis must stay bounded). */
export const MAX_COMMAND_BYTES = 64 * 1024;

export interface ShellCommand {
  /** Normalised program name: quotes removed, path stripped to its basename. */
  readonly name: string;
  /** The program word as written (after quote removal), e.g. `/bin/rm`. */
  readonly path: string;
  /** Arguments after quote removal; parts known only at run time are `…`. */
  readonly args: readonly string[];
  /** Some argument is only known at run time (or arrives later, as with xargs and find -exec). */
  readonly dynamicArgs: boolean;
  /** Wrappers it runs under, outermost first (e.g. ["sudo", "env"]). */
  readonly via: readonly string[];
  /** Files its redirections name (matched by refusing argument policies only). */
  readonly redirects?: readonly string[];
}

export type ShellAnalysis =
  | {
      readonly ok: true;
      readonly commands: readonly ShellCommand[];
      readonly unknowable: readonly string[];
      /**
       * Arithmetic, `${!ref}` or a nameref evaluates some variable's value: in an interactive
       * shell that value may come from an earlier line (`x='a[$(rm x)]'`, then `echo $((x))`).
       */
      readonly evaluatesValues?: boolean;
    }
  | { readonly ok: false; readonly error: string; readonly incomplete: boolean };

interface WasmApi {
  compile(bytes: Uint8Array): Promise<unknown>;
  instantiate(module: unknown, imports: unknown): Promise<unknown>;
}

type Processor = ReturnType<typeof getProcessor>;
let processor: Processor | undefined;
let loading: Promise<Processor> | undefined;

/** Load the WASM parser once (compiled module cached; each parse gets a fresh instance). */
export function initShellParser(): Promise<void> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmPath = require.resolve("sh-syntax/main.wasm");
    // The tsconfig has no DOM lib, so the WebAssembly global is typed here, minimally.
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const module = await wasm.compile(await readFile(wasmPath));
    const instantiate = (imports: unknown): Promise<unknown> => wasm.instantiate(module, imports);
    processor = getProcessor(instantiate as Parameters<typeof getProcessor>[0]);
    return processor;
  })();
  return loading.then(() => undefined);
}

/** Whether sh-syntax accepts the text as bash. */
async function validate(text: string): Promise<{ ok: true } | { ok: false; error: string; incomplete: boolean }> {
  await initShellParser();
  const p = processor;
  if (p === undefined) return { ok: false, error: "the shell parser is not available", incomplete: false };
  try {
    await p(text, { variant: LangVariant.LangBash, keepComments: false });
    return { ok: true };
  } catch (e) {
    const incomplete = typeof e === "object" && e !== null && "Incomplete" in e && e.Incomplete === true;
    const msg = e instanceof Error ? e.message : "parse error";
    return { ok: false, error: msg.slice(0, 200), incomplete };
  }
}

/**
 * Whether the text is valid bash so far but not finished (an open quote, `for … do` without
 * `done`, a here-document still collecting lines). Interactive shells wait for more lines then.
 */
export async function isIncompleteShell(text: string): Promise<boolean> {
  if (Buffer.byteLength(text, "utf8") > MAX_COMMAND_BYTES) return false;
  const v = await validate(text);
  return !v.ok && v.incomplete;
}

/** Whether the text is a whole bash command on its own (it parses, nothing left open). */
export async function isCompleteShell(text: string): Promise<boolean> {
  if (Buffer.byteLength(text, "utf8") > MAX_COMMAND_BYTES) return false;
  return (await validate(text)).ok;
}

export interface AnalyzeOptions {
  /**
   * Whether a word names a program a refusing policy guards (its `commands` globs). Used by the
   * fallback for programs the analysis has no table for (see `unknownRunner`).
   */
  readonly guarded?: (program: string) => boolean;
}

/** Analyse a command string as bash would run it. */
export async function analyzeShell(text: string, options: AnalyzeOptions = {}): Promise<ShellAnalysis> {
  if (Buffer.byteLength(text, "utf8") > MAX_COMMAND_BYTES) return { ok: false, error: `the command is longer than ${MAX_COMMAND_BYTES} bytes`, incomplete: false };
  if (text.includes("\u0000")) return { ok: false, error: "the command contains a NUL byte", incomplete: false };
  const v = await validate(text);
  if (!v.ok) return v;
  return analyzeValidated(text, options);
}

/** The extraction step alone (synchronous), for text sh-syntax already accepted. */
export function analyzeValidated(text: string, options: AnalyzeOptions = {}): ShellAnalysis {
  const commands: ShellCommand[] = [];
  const unknowable: string[] = [];
  const facts: Facts = { arithmetic: false, literalCode: false, dynamicValue: false, ...(options.guarded === undefined ? {} : { guarded: options.guarded }) };
  FACTS.set(commands, facts);
  expandScript(text, [], 0, commands, unknowable);
  checkPlantedPrograms(commands, unknowable);
  if (facts.arithmetic && (facts.literalCode || facts.dynamicValue)) {
    unknowable.push("arithmetic evaluation could run code hidden in a variable's value");
  }
  return { ok: true, commands, unknowable: [...new Set(unknowable)], evaluatesValues: facts.arithmetic };
}

interface Facts extends ArithmeticFacts {
  /** Some variable gets a value only known at run time (substitution, read, mapfile, …). */
  dynamicValue: boolean;
  readonly guarded?: (program: string) => boolean;
}

/** The facts of the analysis a command list belongs to (one list per analysis). */
const FACTS = new WeakMap<ShellCommand[], Facts>();

function factsOf(out: ShellCommand[]): Facts {
  let f = FACTS.get(out);
  if (f === undefined) {
    f = { arithmetic: false, literalCode: false, dynamicValue: false };
    FACTS.set(out, f);
  }
  return f;
}

/** Builtins that set variables from input or from their (possibly dynamic) arguments. */
const VALUE_SETTERS = new Set(["read", "mapfile", "readarray", "declare", "typeset", "local", "export", "readonly", "printf", "getopts"]);

function expandScript(text: string, via: readonly string[], depth: number, out: ShellCommand[], unknowable: string[]): void {
  if (depth > MAX_DEPTH) {
    unknowable.push("commands are nested too deeply");
    return;
  }
  let parsed;
  try {
    parsed = parseScript(text, depth);
  } catch (e) {
    unknowable.push(e instanceof ShellParseError ? `the command could not be followed (${e.message})` : "the command could not be followed");
    return;
  }
  unknowable.push(...parsed.unknowable);
  const facts = factsOf(out);
  if (parsed.facts.arithmetic) facts.arithmetic = true;
  if (parsed.facts.literalCode) facts.literalCode = true;
  for (const c of parsed.commands) {
    const from = out.length;
    expandCommand(c, via, depth, out, unknowable);
    // Redirections apply to whatever the command runs (`sudo cat < /etc/shadow`).
    const redirects = c.redirects;
    if (redirects !== undefined) {
      for (let k = from; k < out.length; k++) {
        const sc = out[k];
        if (sc !== undefined) out[k] = { ...sc, redirects, dynamicArgs: sc.dynamicArgs || redirects.some((r) => r.includes(DYNAMIC_MARK)) };
      }
    }
  }
}

/** The program name as the kernel will find it: basename of the path. */
export function normaliseProgram(word: string): string {
  const stripped = word.replace(/\/+$/, "");
  const slash = stripped.lastIndexOf("/");
  return slash < 0 ? stripped : stripped.slice(slash + 1);
}

function expandCommand(c: RawCommand, via: readonly string[], depth: number, out: ShellCommand[], unknowable: string[]): void {
  const words = c.words;
  let i = 0;
  while (i < words.length && words[i]?.assignment === true) {
    checkAssignment(words[i]?.text ?? "", unknowable);
    if (words[i]?.dynamic === true) factsOf(out).dynamicValue = true;
    i++;
  }
  if (i >= words.length) return; // assignments only
  expandWords(words.slice(i), via, depth, out, unknowable, c.stdinFromHere, false);
}

/**
 * Environment variables that make a program run code the command does not show: bash function
 * imports, startup files of non-interactive shells, prompt hooks, preloaded libraries.
 */
const CODE_VARIABLES = /^(BASH_FUNC_|(BASH_ENV|ENV|PROMPT_COMMAND|PS[0-4]|SHELLOPTS|BASHOPTS|GLOBIGNORE|IFS|PATH|BASH_ALIASES|BASH_CMDS|BASH_LOADABLES_PATH|EXECIGNORE|SHELL|INPUTRC|ZDOTDIR|FPATH|CDPATH|LD_[A-Z_]*|GCONV_PATH|PAGER|MANPAGER|SYSTEMD_PAGER|PSQL_PAGER|PSQL_EDITOR|LESS|LESSOPEN|LESSCLOSE|LESSKEY|MORE|EDITOR|VISUAL|SUDO_EDITOR|SUDO_ASKPASS|SSH_ASKPASS|BROWSER|RSYNC_RSH|TAR_OPTIONS|GIT_[A-Z_]*|NODE_OPTIONS|NODE_PATH|PERL5OPT|PERL5LIB|PERLLIB|RUBYOPT|RUBYLIB|PYTHONPATH|PYTHONSTARTUP|PYTHONHOME|PYTHONINSPECT|PYTHONWARNINGS|MAKEFLAGS|MFLAGS)(\[[^\]]*\])?\+?(=|$))/;

function checkAssignment(text: string, unknowable: string[]): void {
  if (CODE_VARIABLES.test(text)) unknowable.push(`${text.slice(0, Math.min(40, /[[+=]/.exec(text)?.index ?? 40))} can make programs run code the command does not show`);
}

/**
 * A program the same command copies, links or moves into place under another name (`cp
 * /bin/rm /tmp/x; /tmp/x`) runs as whatever it was: a program named like a file those
 * commands write is unknowable. (Across commands this cannot be seen: see README.)
 */
const PLANTERS = new Set(["cp", "ln", "mv", "install", "link", "rsync", "scp", "tee", "dd", "ditto", "gcp", "busybox", "toybox", "curl", "wget", "unzip", "tar", "chmod"]);

function checkPlantedPrograms(commands: readonly ShellCommand[], unknowable: string[]): void {
  const written = new Set<string>();
  for (const c of commands) {
    if (!PLANTERS.has(c.name.toLowerCase())) continue;
    for (const a of c.args) {
      if (a.startsWith("-") && !a.includes("=")) continue;
      const value = a.startsWith("of=") || a.startsWith("--output=") ? a.slice(a.indexOf("=") + 1) : a;
      written.add(normaliseProgram(value).toLowerCase());
    }
  }
  if (written.size === 0) return;
  for (const c of commands) {
    if (PLANTERS.has(c.name.toLowerCase()) && !c.path.includes("/")) continue;
    if (written.has(c.name.toLowerCase())) {
      unknowable.push(`${c.path.slice(0, 60)} may be a program the same command copied, linked or downloaded`);
      return;
    }
  }
}

/** Builtins whose non-option words are variable names (or NAME=VALUE). */
const NAME_TAKERS = new Set(["declare", "typeset", "local", "export", "readonly", "read", "mapfile", "readarray", "getopts", "unset", "printf"]);

function argText(w: Word): string {
  return w.text;
}

function expandWords(
  words: readonly Word[],
  via: readonly string[],
  depth: number,
  out: ShellCommand[],
  unknowable: string[],
  stdinFromHere: boolean,
  argsArriveLater: boolean,
): void {
  const first = words[0];
  if (first === undefined) return;
  if (first.dynamic || first.expands || first.text.includes(DYNAMIC_MARK)) {
    unknowable.push("the program name is computed at run time");
    return;
  }
  if (first.text === "") {
    unknowable.push("the program name is empty");
    return;
  }
  // zsh runs `=rm` as the path of rm; a name with control or non-ASCII characters (homoglyphs,
  // zero-width spaces) is not what it looks like to people reading the audit log.
  if (first.text.startsWith("=") || /[^\x21-\x7e]/.test(first.text)) {
    unknowable.push("the program name has characters that hide what it runs (=, control or non-ASCII)");
    return;
  }
  const name = normaliseProgram(first.text);
  const args = words.slice(1);
  out.push({
    name,
    path: first.text,
    args: args.map(argText),
    // `~user/…` and `~/..` leave the directory they seem to name.
    dynamicArgs: argsArriveLater || args.some((a) => a.dynamic || a.expands || /^~([^/]|.*\/\.\.(\/|$))/.test(a.text)),
    via,
  });
  const lower = name.toLowerCase();
  // Interpreters with inline code, options naming a command, builtins that rebind names.
  const code = hiddenCode(name, args.map(argText));
  if (code !== undefined) {
    unknowable.push(code);
    return;
  }
  if (NAME_TAKERS.has(lower)) {
    for (const a of args) {
      if (a.text.startsWith("-")) continue;
      checkAssignment(a.text.includes("=") ? a.text : `${a.text}=`, unknowable);
      // A subscript in a variable name is arithmetic: its substitutions run.
      if (a.text.includes("[")) factsOf(out).arithmetic = true;
    }
    if (lower === "declare" || lower === "typeset" || lower === "local") {
      if (args.some((a) => /^-[A-Za-z]*n/.test(a.text))) factsOf(out).arithmetic = true; // namerefs resolve subscripts
    }
  }
  if ((lower === "test" || lower === "[") && args.some((a) => a.text === "-v")) factsOf(out).arithmetic = true;
  if (VALUE_SETTERS.has(lower)) {
    const facts = factsOf(out);
    if (lower === "read" || lower === "mapfile" || lower === "readarray" || lower === "getopts" || args.some((a) => a.dynamic)) facts.dynamicValue = true;
    if (args.some((a) => /^-[A-Za-z]*i/.test(a.text)) && lower !== "read" && lower !== "printf") facts.arithmetic = true;
    if (args.some((a) => /\$\(|\$\[|`/.test(a.text))) facts.literalCode = true;
  }
  if (lower === "let") factsOf(out).arithmetic = true;
  if (lower === "eval") {
    unknowable.push("eval runs a string built at run time");
    return;
  }
  if (lower === "source" || lower === ".") {
    unknowable.push(`${name} runs commands from a file`);
    return;
  }
  if (lower === "alias") {
    if (args.some((a) => a.text.includes("="))) unknowable.push("an alias is defined in the command");
    return;
  }
  if (lower === "trap") {
    const targs = args[0]?.text === "--" ? args.slice(1) : args;
    const handler = targs[0];
    if (targs.length < 2 || handler === undefined || (handler.text.startsWith("-") && !handler.dynamic)) return; // trap -p, trap -l, trap - SIG
    if (handler.dynamic) unknowable.push("a trap handler is computed at run time");
    else expandScript(handler.text, [...via, name], depth + 1, out, unknowable);
    return;
  }
  const shell = SHELLS.has(lower);
  if (shell) {
    expandShell(name, args, via, depth, out, unknowable, stdinFromHere);
    return;
  }
  const hidden = HIDDEN_RUNNERS.get(lower);
  if (hidden !== undefined && (args.some((a) => a.dynamic) || hidden(args.map((a) => a.text)))) {
    unknowable.push(`${name} runs commands the gateway cannot see`);
    return;
  }
  if (lower === "start-stop-daemon") {
    startStopDaemon(name, args, via, depth, out, unknowable, stdinFromHere);
    return;
  }
  const spec = WRAPPERS.get(lower);
  if (spec !== undefined) {
    expandWrapper(name, spec, args, via, depth, out, unknowable, stdinFromHere);
    return;
  }
  for (const sub of SUBCOMMAND_WRAPPERS.get(lower) ?? []) {
    // The subcommand is the first words that are not options (global options are skipped
    // when they do not take a value; otherwise the command cannot be told).
    const positional = args.filter((a) => !a.text.startsWith("-"));
    if (sub.path.every((p, i) => positional[i]?.text === p)) {
      const last = positional[sub.path.length - 1];
      if (last === undefined) continue;
      const at = args.indexOf(last);
      const before = args.slice(0, at + 1).filter((a) => a.text.startsWith("-"));
      if (before.length > 0 && !sub.spec.dashdash) {
        unknowable.push(`${name} has options before ${sub.path.join(" ")} the gateway does not follow`);
        return;
      }
      const rest = args.slice(at + 1);
      if (sub.spec.dashdash === true) {
        const dd = rest.findIndex((a) => a.text === "--");
        if (dd < 0) unknowable.push(`${name} ${sub.path.join(" ")} without "--" before the command`);
        else if (dd + 1 < rest.length) expandWords(rest.slice(dd + 1), [...via, name], depth + 1, out, unknowable, stdinFromHere, false);
        return;
      }
      expandWrapper(`${name} ${sub.path.join(" ")}`, sub.spec, rest, via, depth, out, unknowable, stdinFromHere);
      return;
    }
  }
  unknownRunner(name, lower, args, out, unknowable);
}

/**
 * The fallback for a program the analysis has no table for (not a shell, wrapper, hidden or
 * code runner, nor a known non-runner such as `echo`, `grep`, `git`, `cp`): it may run its
 * arguments as a command, as the wrappers do (`chronic rm x`, `faketime @0 rm x`). It counts as
 * unknowable when a word that could start a command follows `--` (`foo -- rm`), or when a
 * non-option argument (by itself or its basename) is a shell or a program a refusing policy
 * names (`guarded`). For programs with subcommands (`docker rm`, `apt remove`) the subcommand
 * word itself is not counted.
 */
function unknownRunner(name: string, lower: string, args: readonly Word[], out: ShellCommand[], unknowable: string[]): void {
  if (NON_RUNNERS.has(lower) || CODE_RUNNERS.has(lower) || hiddenCode(name, []) !== undefined || /^(python|perl|ruby|php|node|lua)[0-9.]*$/.test(lower)) return;
  const guarded = factsOf(out).guarded;
  let positional = 0;
  const skipFirst = SUBCOMMAND_PROGRAMS.has(lower);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === undefined) break;
    const t = a.text;
    if (t === "--") {
      const next = args[i + 1];
      if (next !== undefined && next.text !== "") {
        unknowable.push(`${name} is followed by "--" and a word: it may run that as a command the gateway cannot follow`);
        return;
      }
      continue;
    }
    if (t.startsWith("-") || a.dynamic || t.includes(DYNAMIC_MARK)) continue;
    positional++;
    if (skipFirst && positional === 1) continue;
    const base = normaliseProgram(t).toLowerCase();
    if (base === "") continue;
    if (SHELLS.has(base) || (guarded !== undefined && (guarded(t) || guarded(base)))) {
      unknowable.push(`${name} may run its argument ${t.slice(0, 40)} as a command the gateway cannot follow`);
      return;
    }
  }
}

/**
 * `start-stop-daemon --start --exec PROG [--startas PROG] -- ARGS`: the program is an option's
 * value and its arguments follow `--`. Stopping or querying runs nothing.
 */
function startStopDaemon(name: string, args: readonly Word[], via: readonly string[], depth: number, out: ShellCommand[], unknowable: string[], stdinFromHere: boolean): void {
  const VALUED = "pxnugsRardNPkcIO";
  let start = false;
  let exec: Word | undefined;
  let startas: Word | undefined;
  let after: readonly Word[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === undefined) break;
    const t = a.text;
    if (a.dynamic) {
      unknowable.push(`${name} gets an option computed at run time`);
      return;
    }
    if (t === "--") {
      after = args.slice(i + 1);
      break;
    }
    if (t.startsWith("--")) {
      const { name: opt, value } = splitOpt(t);
      if (opt === "--start") start = true;
      const take = (): Word | undefined => (value === undefined ? args[++i] : { ...a, text: value });
      if (opt === "--exec") exec = take();
      else if (opt === "--startas") startas = take();
      continue;
    }
    if (!t.startsWith("-") || t === "-") {
      unknowable.push(`${name} has an argument the gateway does not follow (${t.slice(0, 40)})`);
      return;
    }
    const cluster = t.slice(1);
    for (let k = 0; k < cluster.length; k++) {
      const ch = cluster.charAt(k);
      if (ch === "S") start = true;
      if (!VALUED.includes(ch)) continue;
      const rest = cluster.slice(k + 1);
      const w = rest === "" ? args[++i] : { ...a, text: rest };
      if (ch === "x") exec = w;
      if (ch === "a") startas = w;
      break;
    }
  }
  if (!start) return;
  const program = startas ?? exec;
  if (program === undefined) {
    unknowable.push(`${name} --start without a program the gateway can tell`);
    return;
  }
  expandWords([program, ...after], [...via, name], depth + 1, out, unknowable, stdinFromHere, false);
}

/** `sh -c STRING`, `bash script.sh`, or a shell reading commands from its standard input. */
function expandShell(
  name: string,
  args: readonly Word[],
  via: readonly string[],
  depth: number,
  out: ShellCommand[],
  unknowable: string[],
  stdinFromHere: boolean,
): void {
  let command = false;
  let readsStdin = false;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i];
    if (a === undefined) break;
    if (a.dynamic) {
      unknowable.push(`${name} gets an option computed at run time`);
      return;
    }
    const t = a.text;
    if (t === "--" || t === "-") {
      i++;
      if (t === "-") readsStdin = true;
      break;
    }
    if (!t.startsWith("-") && !t.startsWith("+")) break;
    if (t.startsWith("--")) {
      if (t === "--rcfile" || t === "--init-file") i++;
      continue;
    }
    // Short option clusters: -c, -s, -i, -l, -e, -x, -o NAME, -O NAME
    for (const ch of t.slice(1)) {
      if (ch === "c") command = true;
      else if (ch === "s" || ch === "i") readsStdin = true;
      else if (ch === "o" || ch === "O") i++;
    }
  }
  const rest = args.slice(i);
  if (command) {
    const script = rest[0];
    if (script === undefined) {
      unknowable.push(`${name} -c without a command`);
      return;
    }
    if (script.dynamic) {
      unknowable.push(`${name} -c runs a string built at run time`);
      return;
    }
    expandScript(script.text, [...via, name], depth + 1, out, unknowable);
    return;
  }
  if (rest.length === 0 || readsStdin) {
    unknowable.push(stdinFromHere ? `${name} reads its commands from a here-document or here-string` : `${name} reads its commands from standard input`);
    return;
  }
  // A script read from a stream (/dev/stdin, /dev/fd/N, /proc/self/fd/N, <(…), $VAR) is input, not a file on disk.
  const script = rest[0];
  if (script !== undefined && (script.dynamic || script.expands || isStreamPath(script.text))) {
    unknowable.push(`${name} reads its commands from a stream or a name computed at run time`);
  }
  // `bash script.sh`: the script file is a program like any other; its name is recorded.
}

function splitOpt(t: string): { name: string; value: string | undefined } {
  const eq = t.indexOf("=");
  return eq < 0 || !t.startsWith("--") ? { name: t, value: undefined } : { name: t.slice(0, eq), value: t.slice(eq + 1) };
}

function expandWrapper(
  name: string,
  spec: WrapperSpec,
  args: readonly Word[],
  via: readonly string[],
  depth: number,
  out: ShellCommand[],
  unknowable: string[],
  stdinFromHere: boolean,
): void {
  const nextVia = [...via, name];
  if (spec.kind === "find") {
    // find … -exec CMD … ; | + (also -execdir, -ok, -okdir)
    for (let i = 0; i < args.length; i++) {
      const t = args[i]?.text;
      if (t === "-exec" || t === "-execdir" || t === "-ok" || t === "-okdir") {
        let j = i + 1;
        while (j < args.length && args[j]?.text !== ";" && args[j]?.text !== "+") j++;
        const inner = args.slice(i + 1, j);
        if (inner.length === 0) unknowable.push(`${name} ${t} without a command`);
        else if (replacedProgram(inner, "{}")) unknowable.push(`${name} ${t} runs a program named by its input`);
        else expandWords(inner, nextVia, depth + 1, out, unknowable, false, true);
        i = j;
      }
    }
    return;
  }
  if (spec.kind === "joined") {
    // The remaining words are joined with spaces and run by a shell (watch, ssh host cmd…).
    const r = skipOptions(name, spec, args, nextVia, depth, out, unknowable);
    if (r === undefined) return;
    const after = r.rest.slice(spec.skip ?? 0);
    if (after.length === 0 || r.noRun) {
      if (spec.bare === "shell" && !r.noRun) unknowable.push(`${name} without a command starts a shell`);
      return;
    }
    if (after.some((w) => w.dynamic)) {
      unknowable.push(`${name} runs a command string built at run time`);
      return;
    }
    expandScript(after.map((w) => w.text).join(" "), nextVia, depth + 1, out, unknowable);
    return;
  }
  const r = skipOptions(name, spec, args, nextVia, depth, out, unknowable);
  if (r === undefined) return;
  if (spec.kind === "shellArgs") {
    expandShell(name, r.rest, via, depth, out, unknowable, stdinFromHere);
    return;
  }
  const lower = lowerName(name);
  if (spec.filesOnly === true) {
    // Positional words are files; getopt permutes, so options may follow them.
    let scriptGiven = r.scriptGiven;
    let noRun = r.noRun;
    let rest = r.rest;
    while (rest.length > 0) {
      const w = rest[0];
      if (w !== undefined && w.text.startsWith("-") && w.text !== "-") {
        const again = skipOptions(name, spec, rest, nextVia, depth, out, unknowable);
        if (again === undefined) return;
        scriptGiven ||= again.scriptGiven;
        noRun ||= again.noRun;
        rest = again.rest;
      } else {
        rest = rest.slice(1);
      }
    }
    if (!scriptGiven && !noRun && spec.bare === "shell") unknowable.push(`${name} without a command starts a shell reading its input`);
    return;
  }
  // su (and runuser without -u) take a user, then arguments for the user's shell.
  const suMode = lower === "su" || (lower === "runuser" && !args.some((a) => a.text === "--user" || a.text.startsWith("--user=") || /^-[A-Za-z]*u/.test(a.text)));
  const optionWords = args.slice(0, args.length - r.rest.length).map((a) => a.text);
  const skipOff = spec.skipUnless?.some((o) => optionWords.some((t) => t === o || t.startsWith(o.startsWith("--") ? `${o}=` : o))) === true;
  const skip = lower === "runuser" && suMode ? 1 : skipOff ? 0 : (spec.skip ?? 0);
  // A lone "-" is an option for env (-i) and su/runuser (-l).
  const rest0 = (lower === "env" || lower === "su" || lower === "runuser") && r.rest[0]?.text === "-" ? r.rest.slice(1) : r.rest;
  let words: readonly Word[] = rest0.length > skip ? rest0.slice(skip) : [];
  let scriptGiven = r.scriptGiven;
  if (spec.permute === true && words[0]?.text.startsWith("-") === true) {
    // su USER -c CMD: options may follow the positional words.
    const again = skipOptions(name, spec, words, nextVia, depth, out, unknowable);
    if (again === undefined) return;
    scriptGiven ||= again.scriptGiven;
    if (again.noRun) return;
    if (scriptGiven) return; // the words left are arguments of the command string
    words = again.rest;
  }
  if (scriptGiven && spec.permute === true) return;
  if (suMode && words.length > 0) {
    // `su USER -- -c CMD`, `su USER script`: the words are the shell's arguments.
    expandShell(name, words, nextVia, depth + 1, out, unknowable, stdinFromHere);
    return;
  }
  if (spec.assigns === true) {
    // env and sudo take any NAME=VALUE word (not only shell identifiers) as an assignment.
    let k = 0;
    while (k < words.length && /^[^=/]+=/.test(words[k]?.text ?? "")) {
      checkAssignment(words[k]?.text ?? "", unknowable);
      k++;
    }
    words = words.slice(k);
  }
  if (r.noRun) return;
  if (spec.kind === "xargs") {
    const replace = xargsReplaceString(args);
    if (replace !== undefined && replacedProgram(words, replace)) {
      unknowable.push(`${name} runs a program or script named by its input`);
      return;
    }
  }
  if (lowerName(name) === "parallel" && words[0]?.text.startsWith(":::") === true) {
    // `parallel ::: CMD…`: the inputs are the commands.
    for (const w of words.slice(1)) {
      if (w.dynamic) unknowable.push(`${name} runs commands built at run time`);
      else if (!w.text.startsWith(":::")) expandScript(w.text, nextVia, depth + 1, out, unknowable);
    }
    return;
  }
  if (words.length === 0) {
    if (spec.bare === "shell" && !scriptGiven) unknowable.push(`${name} without a command starts a shell reading its input`);
    if (spec.bare === "stdin") unknowable.push(`${name} reads the command it runs from its input`);
    return;
  }
  expandWords(words, nextVia, depth + 1, out, unknowable, stdinFromHere, spec.kind === "xargs");
}

function lowerName(n: string): string {
  return n.toLowerCase();
}

/** xargs -I R / --replace[=R] / -i[R]: the string replaced by each input item. */
function xargsReplaceString(args: readonly Word[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const t = args[i]?.text ?? "";
    if (!t.startsWith("-")) return undefined;
    if (t === "-I") return args[i + 1]?.text ?? "{}";
    if (t.startsWith("-I")) return t.slice(2);
    if (t === "--replace" || t === "-i") return "{}";
    if (t.startsWith("--replace=")) return t.slice(10);
    if (t.startsWith("-i")) return t.slice(2);
  }
  return undefined;
}

/** The program, or the script of a shell, contains the placeholder input replaces. */
function replacedProgram(words: readonly Word[], placeholder: string): boolean {
  const first = words[0];
  if (first === undefined || placeholder === "") return false;
  if (first.text.includes(placeholder)) return true;
  const name = normaliseProgram(first.text).toLowerCase();
  if (SHELLS.has(name) || WRAPPERS.has(name) || name === "eval") return words.some((w) => w.text.includes(placeholder));
  return false;
}

interface SkippedOptions {
  readonly rest: readonly Word[];
  /** An option carried a command string (analysed already). */
  readonly scriptGiven: boolean;
  /** An option means nothing is run (e.g. `command -v`). */
  readonly noRun: boolean;
}

/**
 * Skip a wrapper's options. Options that take a command string (`su -c`, `flock -c`,
 * `script -c`, `env -S`) are analysed on the spot. Returns the words after the options, or
 * undefined when an option is not in the table (then what runs cannot be told: unknowable).
 */
function skipOptions(
  name: string,
  spec: WrapperSpec,
  args: readonly Word[],
  via: readonly string[],
  depth: number,
  out: ShellCommand[],
  unknowable: string[],
): SkippedOptions | undefined {
  let scriptGiven = false;
  let noRun = false;
  const script = (w: Word | undefined, text: string | undefined, opt: string): boolean => {
    if (text === undefined || w?.dynamic === true) {
      unknowable.push(`${name} ${opt} runs a string built at run time`);
      return false;
    }
    scriptGiven = true;
    // env -S splits its string itself: `\_` is a space there (not a shell escape).
    expandScript(lowerName(name) === "env" ? text.replace(/\\_/g, " ") : text, via, depth + 1, out, unknowable);
    return true;
  };
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i];
    if (a === undefined) break;
    const t = a.text;
    if (t === "--") {
      i++;
      break;
    }
    if (!t.startsWith("-") || t === "-") break;
    if (a.dynamic) {
      unknowable.push(`${name} gets an option computed at run time`);
      return undefined;
    }
    if (spec.numeric === true && /^-\d+$/.test(t)) continue;
    if (t.startsWith("--")) {
      const { name: opt, value } = splitOpt(t);
      if (spec.script?.includes(opt) === true) {
        const w = value === undefined ? args[++i] : a;
        if (!script(w, value ?? w?.text, opt)) return undefined;
        continue;
      }
      if (spec.noRun?.includes(opt) === true) noRun = true;
      if (spec.value?.includes(opt) === true) {
        if (value === undefined) i++;
        continue;
      }
      if (spec.flag?.includes(opt) === true || spec.noRun?.includes(opt) === true) continue;
      unknowable.push(`${name} has an option the gateway does not know (${opt})`);
      return undefined;
    }
    // a cluster of short options: -abc, -uroot, -u root
    const cluster = t.slice(1);
    for (let k = 0; k < cluster.length; k++) {
      const opt = `-${cluster.charAt(k)}`;
      const restOfCluster = cluster.slice(k + 1);
      if (spec.script?.includes(opt) === true) {
        const w = restOfCluster === "" ? args[++i] : a;
        if (!script(w, restOfCluster === "" ? w?.text : restOfCluster, opt)) return undefined;
        break;
      }
      if (spec.noRun?.includes(opt) === true) {
        noRun = true;
        continue;
      }
      if (spec.value?.includes(opt) === true) {
        if (restOfCluster === "") i++;
        break;
      }
      if (spec.flag?.includes(opt) === true) continue;
      unknowable.push(`${name} has an option the gateway does not know (${opt})`);
      return undefined;
    }
  }
  return { rest: args.slice(Math.min(i, args.length)), scriptGiven, noRun };
}

/** Public entry for tests: analyse and return the program names only. */
export async function programNames(text: string): Promise<string[] | string> {
  const a = await analyzeShell(text);
  if (!a.ok) return `error: ${a.error}`;
  if (a.unknowable.length > 0) return `unknowable: ${a.unknowable.join("; ")}`;
  return a.commands.map((c) => c.name);
}

