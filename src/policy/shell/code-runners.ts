/**
 * Programs that run code the command line does not show as a program: interpreters given
 * inline code (`python -c`, `perl -e`, `awk 'BEGIN{system(…)}'`, `sed 'e …'`), tools with an
 * option naming a command (`git -c core.pager=…`, `tar --to-command`, `rsync -e`, `ssh -o
 * ProxyCommand=…`), editors and shells-within-programs that read commands from their input,
 * and shell builtins that change what a later name or key runs (`hash -p`, `bind`, `enable -f`,
 * `complete -C`, `fc`, `stty erase`). The analysis cannot follow that code: it is unknowable
 * (denied when a guard applies). Found by the second bypass corpus (bypass-cases-2.ts).
 *
 * Each check gets the argument texts (parts known only at run time hold DYNAMIC_MARK) and
 * returns why the command is unknowable, or undefined when it is not.
 */
import { DYNAMIC_MARK } from "./parse.js";

type Check = (args: readonly string[]) => string | undefined;

const dyn = (a: string): boolean => a.includes(DYNAMIC_MARK);

/** Files that are really an input stream (a script read from them is not a file on disk). */
export function isStreamPath(p: string): boolean {
  return p.includes(DYNAMIC_MARK) || p === "-" || /^\/(dev|proc)\//.test(p) || p.startsWith("/dev") || p.startsWith("/proc");
}

interface InterpreterSpec {
  /** Short option letters whose presence (even inside a cluster) means inline code. */
  readonly codeLetters: string;
  /** Long options (or whole short words) carrying inline code. */
  readonly codeLong?: readonly string[];
  /** Short option letters taking a value (the rest of the cluster or the next word). */
  readonly valueLetters?: string;
  /** Long options taking the next word as a value (without `=`). */
  readonly valueLong?: readonly string[];
  /** Options after which no script is expected (a module, a version query). */
  readonly noScript?: readonly string[];
}

/**
 * An interpreter is unknowable when it is given inline code, reads its program from standard
 * input (no script, or `-`), or reads its script from a stream (/dev/stdin, <(…), $VAR).
 */
function interpreter(name: string, spec: InterpreterSpec): Check {
  return (args) => {
    for (let i = 0; i < args.length; i++) {
      const a = args[i] ?? "";
      if (dyn(a)) return `${name} gets an option or script computed at run time`;
      if (a === "--") {
        const script = args[i + 1];
        return script === undefined || isStreamPath(script) ? `${name} reads its program from standard input or a stream` : undefined;
      }
      if (a === "-") return `${name} reads its program from standard input`;
      if (a.startsWith("--")) {
        const opt = a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
        if (spec.codeLong?.includes(opt) === true) return `${name} ${opt} runs inline code the gateway cannot inspect`;
        if (spec.noScript?.includes(opt) === true) return undefined;
        if (spec.valueLong?.includes(opt) === true && !a.includes("=")) i++;
        continue;
      }
      if (a.startsWith("-") && a.length > 1) {
        if (spec.codeLong?.includes(a) === true) return `${name} ${a} runs inline code the gateway cannot inspect`;
        if (spec.noScript?.includes(a) === true) return undefined;
        const cluster = a.slice(1);
        for (let k = 0; k < cluster.length; k++) {
          const ch = cluster.charAt(k);
          if (spec.codeLetters.includes(ch)) return `${name} -${ch} runs inline code the gateway cannot inspect`;
          if (spec.noScript?.includes(`-${ch}`) === true) return undefined;
          if (spec.valueLetters?.includes(ch) === true) {
            if (k === cluster.length - 1) i++;
            break;
          }
        }
        continue;
      }
      // The first positional word is the script file.
      return isStreamPath(a) ? `${name} reads its program from a stream (${a.slice(0, 40)})` : undefined;
    }
    return `${name} without a script reads its program from standard input`;
  };
}

/** Any of these words (or word prefixes) among the arguments makes the command unknowable. */
function anyArg(name: string, test: (a: string, i: number, all: readonly string[]) => boolean, what: string): Check {
  return (args) => (args.some((a, i) => test(a, i, args)) ? `${name} ${what}` : undefined);
}

/** awk: the program text is checked for the ways awk runs commands. */
function awk(name: string): Check {
  return (args) => {
    let program: string | undefined;
    let fromFile = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i] ?? "";
      if (a === "--") {
        program ??= args[i + 1];
        break;
      }
      if (/^(-l|--load|-E|--exec|-i|--include)/.test(a)) return `${name} loads code from a file or extension`;
      if (a === "-f" || a === "--file") {
        const f = args[i + 1] ?? "";
        if (isStreamPath(f)) return `${name} reads its program from a stream`;
        fromFile = true;
        i++;
        continue;
      }
      if (a.startsWith("-f") || a.startsWith("--file=")) {
        if (isStreamPath(a.startsWith("-f") ? a.slice(2) : a.slice(7))) return `${name} reads its program from a stream`;
        fromFile = true;
        continue;
      }
      if (a === "-e" || a === "--source") {
        const code = args[i + 1] ?? "";
        const bad = awkCode(name, code);
        if (bad !== undefined) return bad;
        fromFile = true;
        i++;
        continue;
      }
      if (a === "-F" || a === "-v" || a === "--assign" || a === "--field-separator") {
        i++;
        continue;
      }
      if (a.startsWith("-") && a !== "-") continue;
      if (!fromFile) program = a;
      break;
    }
    if (program === undefined) return fromFile ? undefined : `${name} without a program reads it from its input`;
    return awkCode(name, program);
  };
}

function awkCode(name: string, code: string): string | undefined {
  if (dyn(code)) return `${name} runs a program built at run time`;
  // system(), pipes to and from commands (| and |&), gawk indirect calls (@f()) and @load.
  if (/system|\||@/.test(code)) return `${name} program may run commands (system, pipes or indirect calls)`;
  return undefined;
}

/**
 * GNU sed runs commands with the `e` command and the `e` flag of `s`. The script is parsed just
 * enough to find them; what the parser does not follow is unknowable.
 */
function sed(args: readonly string[]): string | undefined {
  const scripts: string[] = [];
  let sawScriptOption = false;
  let firstPositional: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    if (a === "--") {
      firstPositional ??= args[i + 1];
      break;
    }
    if (a === "-e" || a === "--expression") {
      scripts.push(args[++i] ?? "");
      sawScriptOption = true;
      continue;
    }
    if (a.startsWith("--expression=")) {
      scripts.push(a.slice(13));
      sawScriptOption = true;
      continue;
    }
    if (a === "-f" || a === "--file" || a.startsWith("--file=") || /^-[a-zA-Z]*f/.test(a)) {
      const f = a === "-f" || a === "--file" ? (args[++i] ?? "") : a.startsWith("--file=") ? a.slice(7) : a.slice(a.indexOf("f") + 1) || (args[++i] ?? "");
      if (isStreamPath(f)) return "sed reads its script from a stream";
      sawScriptOption = true;
      continue;
    }
    if (a === "-l" || a === "--line-length") {
      i++;
      continue;
    }
    if (/^-[a-zA-Z]*e$/.test(a)) {
      scripts.push(args[++i] ?? "");
      sawScriptOption = true;
      continue;
    }
    if (a.startsWith("-") && a !== "-") continue;
    firstPositional ??= a;
    if (!sawScriptOption) break;
  }
  if (!sawScriptOption) {
    if (firstPositional === undefined) return "sed without a script";
    scripts.push(firstPositional);
  }
  for (const s of scripts) {
    const bad = sedScript(s);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

function sedScript(s: string): string | undefined {
  if (dyn(s)) return "sed runs a script built at run time";
  let i = 0;
  const n = s.length;
  const skipSpace = (): void => {
    while (i < n && /[\s;]/.test(s.charAt(i))) i++;
  };
  const readDelimited = (delim: string): boolean => {
    // Reads up to the unescaped delimiter; returns false when not closed.
    while (i < n) {
      const c = s.charAt(i);
      if (c === "\\") {
        i += 2;
        continue;
      }
      if (c === "\n" && delim !== "\n") return false;
      i++;
      if (c === delim) return true;
    }
    return false;
  };
  const readAddress = (): boolean => {
    const c = s.charAt(i);
    if (/[0-9$]/.test(c)) {
      while (i < n && /[0-9$~+]/.test(s.charAt(i))) i++;
      return true;
    }
    if (c === "/") {
      i++;
      if (!readDelimited("/")) return false;
      while (i < n && /[IM]/.test(s.charAt(i))) i++;
      return true;
    }
    if (c === "\\") {
      const d = s.charAt(i + 1);
      i += 2;
      if (!readDelimited(d)) return false;
      while (i < n && /[IM]/.test(s.charAt(i))) i++;
      return true;
    }
    return true;
  };
  let depth = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    skipSpace();
    if (i >= n) return depth === 0 ? undefined : "sed script not followed";
    if (s.charAt(i) === "#") {
      while (i < n && s.charAt(i) !== "\n") i++;
      continue;
    }
    if (s.charAt(i) === "}") {
      depth--;
      i++;
      continue;
    }
    if (!readAddress()) return "sed script not followed";
    while (i < n && s.charAt(i) === " ") i++;
    if (s.charAt(i) === ",") {
      i++;
      if (s.charAt(i) === "~" || s.charAt(i) === "+") i++;
      if (!readAddress()) return "sed script not followed";
    }
    while (i < n && /[ !]/.test(s.charAt(i))) i++;
    const cmd = s.charAt(i);
    i++;
    switch (cmd) {
      case "{":
        depth++;
        continue;
      case "e":
        return "sed e runs a command";
      case "s": {
        const d = s.charAt(i);
        if (d === "" || d === "\\" || d === "\n") return "sed script not followed";
        i++;
        if (!readDelimited(d) || !readDelimited(d)) return "sed script not followed";
        // flags up to ; } newline; w FILE takes the rest of the line
        while (i < n && !/[;\n}]/.test(s.charAt(i))) {
          const f = s.charAt(i);
          if (f === "e") return "sed s///e runs the result as a command";
          if (f === "w") {
            while (i < n && s.charAt(i) !== "\n") i++;
            break;
          }
          i++;
        }
        continue;
      }
      case "y": {
        const d = s.charAt(i);
        if (d === "" || d === "\\" || d === "\n") return "sed script not followed";
        i++;
        if (!readDelimited(d) || !readDelimited(d)) return "sed script not followed";
        continue;
      }
      case "a":
      case "i":
      case "c":
      case "r":
      case "R":
      case "w":
      case "W":
      case ":":
      case "b":
      case "t":
      case "T":
        // text, file name or label: the rest of the line (labels also end at ;)
        while (i < n && s.charAt(i) !== "\n" && !((cmd === "b" || cmd === "t" || cmd === "T") && s.charAt(i) === ";")) {
          if (s.charAt(i) === "\\") i++;
          i++;
        }
        continue;
      case "q":
      case "Q":
      case "l":
      case "L":
        while (i < n && /[0-9 ]/.test(s.charAt(i))) i++;
        continue;
      case "=": case "d": case "D": case "g": case "G": case "h": case "H": case "n": case "N":
      case "p": case "P": case "x": case "z": case "F":
        continue;
      default:
        return `sed script not followed (command ${JSON.stringify(cmd)})`;
    }
  }
  return "sed script not followed";
}

const shortCluster = (a: string, letters: string): boolean => /^-[^-]/.test(a) && Array.from(letters).some((c) => a.includes(c, 1));

/** git: options and subcommands that run a command, or store one for later. */
function git(args: readonly string[]): string | undefined {
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i] ?? "";
    if (dyn(a)) return "git gets an option computed at run time";
    if (a === "-c" || a.startsWith("--config-env") || a.startsWith("--exec-path=") || /^-c./.test(a)) return "git -c / --config-env may set a command (pager, alias, ssh, fsmonitor …)";
    if (a === "-C" || a === "--git-dir" || a === "--work-tree" || a === "--namespace") {
      i++;
      continue;
    }
    if (a.startsWith("-")) continue;
    break;
  }
  const sub = args[i];
  const rest = args.slice(i + 1);
  if (rest.some((a) => /(^|:)ext::/.test(a) || a.startsWith("ext::"))) return "git ext:: URLs run commands";
  if (rest.some((a) => /^--(upload-pack|receive-pack|exec)(=|$)/.test(a) || (sub === "clone" && a === "-u"))) return "git --upload-pack / --receive-pack run a command";
  switch (sub ?? "") {
    case "config": {
      const writes = rest.filter((a) => !a.startsWith("-"));
      const query = rest.some((a) => /^--(get|get-all|get-regexp|list|unset|unset-all|remove-section|rename-section|show-origin|get-urlmatch)$/.test(a) || a === "-l");
      if (query || writes.length < 2) return undefined;
      const key = (writes[0] ?? "").toLowerCase();
      if (/^(alias\.|core\.(pager|editor|sshcommand|fsmonitor|hookspath|askpass|gitproxy)|.*\.(helper|command|cmd|driver|textconv|clean|smudge|process|program|path|tool)$|diff\.external|sequence\.editor|gpg\.|ssh\.|credential\.|filter\.|merge\.|diff\.|include|uploadpack\.|receivepack\.|remote\..*\.(uploadpack|receivepack|vcs)|protocol\.|url\.)/.test(key))
        return `git config ${key} stores a command git runs later`;
      return undefined;
    }
    case "rebase":
      return rest.some((a) => a === "-x" || a.startsWith("--exec") || /^-[a-zA-Z]*x/.test(a)) ? "git rebase --exec runs commands" : undefined;
    case "bisect":
      return rest[0] === "run" ? "git bisect run runs a command (not looked through)" : undefined;
    case "submodule":
      return rest.includes("foreach") ? "git submodule foreach runs commands" : undefined;
    case "filter-branch":
    case "filter-repo":
      return `git ${sub} runs commands`;
    case "difftool":
    case "mergetool":
      return rest.some((a) => a === "-x" || a.startsWith("--extcmd") || a === "-t" || a.startsWith("--tool")) ? `git ${sub} runs an external command` : undefined;
    case "grep":
      return rest.some((a) => a.startsWith("-O") || a.startsWith("--open-files-in-pager")) ? "git grep -O runs a pager command" : undefined;
    case "archive":
      return rest.some((a) => a.startsWith("--remote") || a.startsWith("--exec")) ? "git archive --exec runs a command" : undefined;
    default:
      return undefined;
  }
}

/** ssh/scp/sftp options that run local commands or read a config that may. */
function sshOptions(name: string): Check {
  return (args) => {
    for (let i = 0; i < args.length; i++) {
      const a = args[i] ?? "";
      if (!a.startsWith("-")) continue;
      const opt = a.slice(0, 2);
      const value = a.length > 2 ? a.slice(2) : (args[i + 1] ?? "");
      if (opt === "-o" && /^\s*(proxycommand|localcommand|permitlocalcommand|knownhostscommand|match|include|remotecommand)/i.test(value)) return `${name} -o ${value.split(/[=\s]/)[0] ?? ""} runs a local command`;
      if (opt === "-F") return `${name} -F reads a config file that may run commands`;
      if (name !== "ssh" && (opt === "-S" || opt === "-D")) return `${name} ${opt} names the program it runs`;
    }
    return undefined;
  };
}

const TAR_BAD = /^--(to-command|checkpoint-action|use-compress-program|info-script|new-volume-script|rsh-command|rmt-command)(=|$)/;

const EDITOR = (name: string): Check => () => `${name} runs commands typed into it`;

const entries: [string, Check][] = [
  // interpreters
  ...["python", "python2", "python3", "pypy", "pypy3"].map((n): [string, Check] => [n, interpreter(n, { codeLetters: "ci", valueLetters: "WXQ", noScript: ["-m", "-V", "--version", "-h", "--help"] })]),
  ["perl", interpreter("perl", { codeLetters: "eEMmx", valueLetters: "Il0Fi", noScript: ["-v", "--version", "-V"] })],
  ["ruby", interpreter("ruby", { codeLetters: "ex", codeLong: ["--eval"], valueLetters: "IrCEK", noScript: ["-v", "--version"] })],
  ...["node", "nodejs"].map((n): [string, Check] => [n, interpreter(n, { codeLetters: "epi", codeLong: ["--eval", "--print", "--interactive", "--import", "--require", "--loader", "--experimental-loader"], valueLetters: "r", noScript: ["-v", "--version", "-h", "--help"] })]),
  ["bun", anyArg("bun", (a) => a === "-e" || a.startsWith("--eval") || a === "-p" || a.startsWith("--print") || a === "repl", "runs inline code the gateway cannot inspect")],
  ["deno", anyArg("deno", (a, i) => i === 0 && (a === "eval" || a === "repl"), "runs inline code the gateway cannot inspect")],
  ["php", interpreter("php", { codeLetters: "raBRFE", valueLetters: "cdfz", noScript: ["-v", "--version", "-m", "-i"] })],
  ...["lua", "luajit", "lua5.1", "lua5.3", "lua5.4"].map((n): [string, Check] => [n, interpreter(n, { codeLetters: "ei", valueLetters: "l", noScript: ["-v"] })]),
  ...["tclsh", "wish", "guile", "racket", "clisp", "elixir", "julia", "scala", "groovy", "osascript", "pwsh", "powershell", "Rscript"]
    .map((n): [string, Check] => [n, interpreter(n, { codeLetters: "ceEix", codeLong: ["--eval", "--expr", "-eval", "-Command", "-EncodedCommand", "-command", "--command", "--execute", "-x"], valueLetters: "", noScript: ["--version", "-v", "-V"] })]),
  // debuggers and REPLs read commands from their input even when given a file
  ...["gdb", "lldb", "ghci", "irb", "jshell", "iex", "erl", "sbcl", "R", "pry"].map((n): [string, Check] => [n, () => `${n} runs commands read from its input`]),
  ["dc", interpreter("dc", { codeLetters: "e", codeLong: ["--expression"], valueLetters: "f" })],
  ["awk", awk("awk")],
  ["gawk", awk("gawk")],
  ["mawk", awk("mawk")],
  ["nawk", awk("nawk")],
  ["sed", sed],
  ["gsed", sed],
  // editors and programs reading commands from their input
  ...["ed", "red", "ex", "vi", "vim", "nvim", "view", "vimdiff", "gvim", "rvim", "emacs", "emacsclient", "nano", "pico", "joe", "mcedit", "mc"].map((n): [string, Check] => [n, EDITOR(n)]),
  ["sqlite3", (args) => {
    const positional = args.filter((a) => !a.startsWith("-"));
    if (positional.length < 2) return "sqlite3 without SQL reads commands (.shell, .system) from its input";
    if (args.some((a) => /\.(shell|system|sh|output|once|import|read|load|open|excel|cd)\b|\||^-(cmd|init)$/.test(a))) return "sqlite3 dot-commands may run commands";
    return undefined;
  }],
  ["psql", (args) => {
    if (!args.some((a) => a === "-c" || a.startsWith("--command") || /^-[a-zA-Z]*c/.test(a) || a === "-l" || a === "--list" || a === "-V" || a === "--version")) {
      const f = args.findIndex((a) => a === "-f" || a.startsWith("--file"));
      if (f < 0) return "psql without -c reads commands (\\!, \\o |) from its input";
      const opt = args[f] ?? "";
      const file = opt.includes("=") ? opt.slice(opt.indexOf("=") + 1) : (args[f + 1] ?? "");
      if (isStreamPath(file)) return "psql reads commands from a stream";
    }
    if (args.some((a) => /\\!|\\[og]\s*\||\\i|\\copy|\\setenv|\bprogram\b|\||\\e/i.test(a) || dyn(a))) return "psql meta-commands may run commands";
    return undefined;
  }],
  ...["mysql", "mariadb"].map((n): [string, Check] => [n, (args) => {
    if (!args.some((a) => a === "-e" || a.startsWith("--execute") || /^-[a-zA-Z]*e/.test(a) || a === "-V" || a === "--version")) return `${n} without -e reads commands (system, \\!) from its input`;
    if (args.some((a) => /\bsystem\b|\\!|\bpager\b|\\P|\btee\b|\\T|\bsource\b|\\\./i.test(a) || dyn(a))) return `${n} client commands may run commands`;
    return undefined;
  }]),
  // options that name a command
  ["git", git],
  ["tar", (args) => {
    if (args.some((a) => TAR_BAD.test(a))) return "tar runs a command given in an option";
    const first = args[0] ?? "";
    if (args.some((a, i) => shortCluster(a, "IF") || (i === 0 && !first.startsWith("-") && /[IF]/.test(first)))) return "tar -I / -F runs a command";
    return undefined;
  }],
  // `rsync --server -vlogDtpre.iLsf …` is the far end of a transfer (its -e. is protocol flags).
  ["rsync", (args) => (args[0] !== "--server" && args.some((a) => /^--(rsh|rsync-path)(=|$)/.test(a) || shortCluster(a, "e")) ? "rsync -e / --rsh / --rsync-path runs a command" : undefined)],
  ["ssh", sshOptions("ssh")],
  ["scp", sshOptions("scp")],
  ["sftp", sshOptions("sftp")],
  ["zip", anyArg("zip", (a) => a === "-TT" || a.startsWith("--unzip-command"), "-TT runs a command")],
  ["man", anyArg("man", (a) => /^(-P|-H|--pager|--html|-C|--config-file)/.test(a), "-P / --pager / -H runs a command")],
  ...["less", "more", "most"].map((n): [string, Check] => [n, anyArg(n, (a) => a.startsWith("+") && /[!|]/.test(a), "runs a command given with +")]),
  ["socat", anyArg("socat", (a) => /(^|[!,])\s*(exec|system)[:,]/i.test(a) || dyn(a), "EXEC / SYSTEM addresses run commands")],
  ...["nc", "netcat", "ncat", "nc.traditional", "nc.openbsd"].map((n): [string, Check] => [n, anyArg(n, (a) => shortCluster(a, "ec") || /^--(exec|sh-exec|lua-exec)/.test(a), "-e / -c / --exec runs a command")]),
  ["make", anyArg("make", (a, i, all) => /^(--eval|-E)/.test(a) || ((a === "-f" || a === "--file" || a === "--makefile") && isStreamPath(all[i + 1] ?? "")) || /^(-f|--file=|--makefile=)\/(dev|proc)\//.test(a), "--eval / a makefile from a stream runs commands")],
  ["strace", anyArg("strace", (a, i, all) => (a === "-o" && /^[|!]/.test(all[i + 1] ?? "")) || /^-o[|!]/.test(a) || /^--output=[|!]/.test(a), "-o |CMD pipes to a command")],
  ...["apt", "apt-get", "aptitude"].map((n): [string, Check] => [n, anyArg(n, (a) => a === "-o" || a.startsWith("-o") || a === "-c" || a.startsWith("--option") || a.startsWith("--config-file"), "-o / -c may set hooks that run commands")]),
  ["crontab", (args) => (args.every((a, i) => a === "-l" || a === "-u" || (i > 0 && args[i - 1] === "-u")) ? undefined : "crontab installs commands that run later")],
  // builtins that change what a later name or key runs
  ["hash", anyArg("hash", (a) => a.startsWith("-") && a.includes("p"), "-p makes a name run another program")],
  ["enable", anyArg("enable", (a) => a.startsWith("-") && a.includes("f"), "-f loads a builtin from a shared object")],
  ["fc", () => "fc runs commands from the history"],
  ["r", () => "r runs commands from the history"],
  ["bind", (args) => (args.every((a) => /^-[lpPsSvVX]+$/.test(a)) ? undefined : "bind changes what keys do")],
  ["complete", anyArg("complete", (a) => /^-[a-zA-Z]*[CF]/.test(a), "-C / -F runs a command at completion")],
  ["compgen", anyArg("compgen", (a) => /^-[a-zA-Z]*[CF]/.test(a), "-C / -F runs a command")],
  ["stty", (args) => (args.every((a) => /^(-a|--all|-g|--save|size|speed|-F|--file=.*)$/.test(a) || a.startsWith("/dev/")) ? undefined : "stty changes what keys do (erase, kill, werase …)")],
];

export const CODE_RUNNERS: ReadonlyMap<string, Check> = new Map(entries);

/** Why running `name` with these arguments is unknowable, if it is. */
export function hiddenCode(name: string, args: readonly string[]): string | undefined {
  const check = CODE_RUNNERS.get(name) ?? CODE_RUNNERS.get(name.toLowerCase()) ?? (/^python[0-9.]+$/.test(name) ? CODE_RUNNERS.get("python3") : undefined) ?? (/^(perl|ruby|php|node)[0-9.]+$/.test(name) ? CODE_RUNNERS.get(name.replace(/[0-9.]+$/, "")) : undefined);
  return check?.(args);
}
