/**
 * Programs that run their arguments as a command, with the option grammar needed to find that
 * command. The analysis looks through them (`sudo -u root env FOO=1 nice -n 5 rm -rf /` runs
 * `rm`). An option not listed for a wrapper makes the command unknowable (fail closed): we
 * cannot tell whether it takes a value, hence where the command starts.
 *
 * Kinds:
 * - plain: options, then `skip` positional words, then the command and its arguments;
 * - xargs: as plain, but arguments arrive later from standard input (always dynamic);
 * - joined: the words after the options (and `skip`) are joined with spaces and run by a shell
 *   (watch, ssh HOST CMD);
 * - find: `-exec CMD … ;` / `+` (also -execdir, -ok, -okdir) anywhere among the arguments;
 * - shellArgs: the words after the options are a shell's arguments (`capsh -- -c CMD`).
 *
 * `script` options carry a whole command string (`su -c`, `flock -c`, `env -S`), analysed as
 * shell. `bare`: what happens with no command: "shell" (an interactive shell reads its input:
 * unknowable), "stdin" (the command comes from input: unknowable), or nothing runs.
 */
export interface WrapperSpec {
  readonly kind: "plain" | "xargs" | "joined" | "find" | "shellArgs";
  readonly value?: readonly string[];
  readonly flag?: readonly string[];
  readonly script?: readonly string[];
  readonly noRun?: readonly string[];
  readonly skip?: number;
  readonly assigns?: boolean;
  readonly numeric?: boolean;
  readonly bare?: "shell" | "stdin";
  /** Options may also follow the positional words (util-linux su and runuser). */
  readonly permute?: boolean;
  /** The command is whatever follows `--` (kubectl exec); without `--` it cannot be told. */
  readonly dashdash?: boolean;
  /**
   * Positional words are files, never a command (`script [options] [file]`): only a `script`
   * option runs a command; without one the program starts a shell (`bare`).
   */
  readonly filesOnly?: boolean;
  /** `skip` applies only when none of these options is given (`runcon CONTEXT CMD` vs `runcon -t TYPE CMD`). */
  readonly skipUnless?: readonly string[];
}

/** Shells: `-c STRING` is analysed; without it they read commands from input (unknowable). */
export const SHELLS: ReadonlySet<string> = new Set(["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "lksh", "pdksh", "yash", "posh", "fish", "tcsh", "csh"]);

/** ASCII option letters: "abc" → ["-a", "-b", "-c"]. */
const letters = (s: string): string[] => Array.from({ length: s.length }, (_, i) => `-${s.charAt(i)}`);

/** util-linux setarch's options (also taken by its arch-named links). */
const SETARCH_OPTIONS = {
  flag: [...letters("vRFZLXBIST3"), "--verbose", "--uname-2.6", "--addr-no-randomize", "--fdpic-funcptrs", "--mmap-page-zero", "--addr-compat-layout", "--read-implies-exec", "--32bit", "--short-inode", "--whole-seconds", "--sticky-timeouts"],
  noRun: ["--list", "-h", "--help", "-V", "--version"],
  bare: "shell",
} as const satisfies Partial<WrapperSpec>;

/** The arch-named links util-linux installs to setarch. */
const SETARCH_LINKS = ["linux32", "linux64", "uname26", "i386", "i486", "i586", "i686", "athlon", "x86_64", "ia64", "ppc", "ppc32", "ppc64", "ppcle", "ppc64le", "s390", "s390x", "sparc", "sparc32", "sparc32bash", "sparc64", "mips", "mips32", "mips64", "parisc", "parisc32", "parisc64", "alpha", "arm", "armh", "armv7l", "armv8l", "aarch64", "loongarch", "loongarch64", "riscv64"];

const entries: [string, WrapperSpec][] = [
  ["env", {
    kind: "plain",
    assigns: true,
    value: ["-u", "--unset", "-C", "--chdir", "--default-signal", "--ignore-signal", "--block-signal"],
    flag: ["-i", "--ignore-environment", "-0", "--null", "-v", "--debug", "--list-signal-handling"],
    script: ["-S", "--split-string"],
  }],
  ["sudo", {
    kind: "plain",
    assigns: true,
    value: ["-u", "--user", "-g", "--group", "-h", "--host", "-p", "--prompt", "-r", "--role", "-t", "--type", "-U", "--other-user", "-C", "--close-from", "-D", "--chdir", "-R", "--chroot", "-T", "--command-timeout"],
    flag: [...letters("AbEHnPSBN"), "--askpass", "--background", "--preserve-env", "--set-home", "--non-interactive", "--preserve-groups", "--stdin", "--bell", "--no-update"],
    noRun: [...letters("lvkKVe"), "--list", "--validate", "--reset-timestamp", "--remove-timestamp", "--version", "--edit", "--help"],
  }],
  ["doas", { kind: "plain", value: ["-u", "-C"], flag: ["-n", "-L"], noRun: [] }],
  ["xargs", {
    kind: "xargs",
    value: ["-a", "--arg-file", "-d", "--delimiter", "-E", "-I", "-L", "--max-lines", "-n", "--max-args", "-P", "--max-procs", "-s", "--max-chars", "--process-slot-var", "--replace", "--eof"],
    flag: [...letters("0prtxo"), "--null", "--interactive", "--no-run-if-empty", "--verbose", "--exit", "--open-tty", "--show-limits"],
  }],
  ["nice", { kind: "plain", numeric: true, value: ["-n", "--adjustment"], flag: [] }],
  ["nohup", { kind: "plain", flag: [] }],
  ["setsid", { kind: "plain", flag: ["-c", "--ctty", "-f", "--fork", "-w", "--wait"] }],
  ["timeout", {
    kind: "plain",
    skip: 1,
    value: ["-s", "--signal", "-k", "--kill-after"],
    flag: ["-v", "--verbose", "--preserve-status", "--foreground"],
  }],
  ["time", { kind: "plain", value: ["-f", "--format", "-o", "--output"], flag: ["-p", "--portability", "-a", "--append", "-v", "--verbose", "-q", "--quiet"] }],
  ["exec", { kind: "plain", value: ["-a"], flag: ["-c", "-l"] }],
  ["command", { kind: "plain", flag: ["-p"], noRun: ["-v", "-V"] }],
  ["builtin", { kind: "plain", flag: [] }],
  ["stdbuf", { kind: "plain", value: ["-i", "--input", "-o", "--output", "-e", "--error"], flag: [] }],
  ["chroot", { kind: "plain", skip: 1, value: ["--userspec", "--groups"], flag: ["--skip-chdir"], bare: "shell" }],
  ["ionice", { kind: "plain", value: ["-c", "--class", "-n", "--classdata", "-p", "--pid", "-P", "--pgid", "-u", "--uid"], flag: ["-t", "--ignore"] }],
  ["chrt", { kind: "plain", skip: 1, value: ["-T", "--sched-runtime", "-P", "--sched-period", "-D", "--sched-deadline"], flag: [...letters("bdfiormRav"), "--batch", "--deadline", "--fifo", "--idle", "--other", "--rr", "--reset-on-fork", "--all-tasks", "--verbose"] }],
  ["taskset", { kind: "plain", skip: 1, flag: ["-a", "--all-tasks", "-c", "--cpu-list"], noRun: ["-p", "--pid"] }],
  ["flock", {
    kind: "plain",
    skip: 1,
    permute: true,
    value: ["-w", "--timeout", "-E", "--conflict-exit-code"],
    flag: [...letters("sxunoFe"), "--shared", "--exclusive", "--unlock", "--nonblock", "--close", "--no-fork", "--verbose"],
    script: ["-c", "--command"],
  }],
  ["su", { kind: "plain", skip: 1, permute: true, value: ["-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w", "--whitelist-environment"], flag: [...letters("lmpfP"), "--login", "--preserve-environment", "--pty"], script: ["-c", "--command", "--session-command"], bare: "shell" }],
  ["runuser", { kind: "plain", permute: true, value: ["-u", "--user", "-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w", "--whitelist-environment"], flag: [...letters("lmpP"), "--login", "--preserve-environment", "--pty"], script: ["-c", "--command", "--session-command"], bare: "shell" }],
  ["sg", { kind: "joined", skip: 1, flag: [], script: ["-c"], bare: "shell" }],
  // `script [options] [file]`: the file is the typescript, not a program (`script -q /dev/null`
  // starts a shell); getopt permutes, so options may follow the file.
  ["script", { kind: "plain", filesOnly: true, permute: true, value: ["-E", "--echo", "-I", "--log-in", "-O", "--log-out", "-B", "--log-io", "-T", "--log-timing", "-m", "--logging-format", "-o", "--output-limit"], flag: [...letters("aefqt"), "--append", "--return", "--flush", "--force", "--quiet"], script: ["-c", "--command"], bare: "shell" }],
  ["watch", { kind: "joined", value: ["-n", "--interval", "-q", "--equexit"], flag: [...letters("bcCdegtwpx"), "--beep", "--color", "--no-color", "--differences", "--errexit", "--chgexit", "--no-title", "--no-wrap", "--precise", "--exec", "--no-linewrap"] }],
  ["ssh", {
    kind: "joined",
    skip: 1,
    value: letters("bcDEeFIiJLlmOopQRSWwB"),
    flag: letters("46AaCfGgKkMNnqsTtVvXxYy"),
    bare: "shell",
  }],
  ["unbuffer", { kind: "plain", flag: ["-p"] }],
  ["nsenter", { kind: "plain", value: ["-t", "--target", "-S", "--setuid", "-G", "--setgid", "-w", "--wd", "-r", "--root"], flag: [...letters("amuinpUCTFZ"), "--all", "--mount", "--uts", "--ipc", "--net", "--pid", "--user", "--cgroup", "--time", "--preserve-credentials", "--no-fork"], bare: "shell" }],
  ["unshare", { kind: "plain", value: ["--map-user", "--map-group", "-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd", "--propagation"], flag: [...letters("muinpUCTfr"), "--mount", "--uts", "--ipc", "--net", "--pid", "--user", "--cgroup", "--time", "--fork", "--map-root-user", "--map-current-user", "--mount-proc", "--kill-child"], bare: "shell" }],
  ["strace", { kind: "plain", value: letters("abeEIoOpPsSuUX"), flag: letters("cCdDfFhiqrtTvVwxyYzZk") }],
  ["ltrace", { kind: "plain", value: letters("aAeEFlnopsuxX"), flag: letters("bcCdDfhiLrStTV") }],
  ["fakeroot", { kind: "plain", value: ["-l", "--lib", "--faked", "-s", "-i"], flag: ["-u", "--unknown-is-real"] }],
  ["pkexec", { kind: "plain", value: ["--user"], flag: ["--disable-internal-agent", "--keep-cwd"] }],
  ["firejail", { kind: "plain", flag: ["--quiet", "--noprofile"] }],
  ["torsocks", { kind: "plain", value: ["-u", "-p", "-a", "-P"], flag: ["-i", "-q", "-d", "--shell"] }],
  ["proxychains", { kind: "plain", value: ["-f"], flag: ["-q"] }],
  ["proxychains4", { kind: "plain", value: ["-f"], flag: ["-q"] }],
  ["busybox", { kind: "plain", flag: [] }],
  // zsh precommand modifiers (`- rm` runs rm with a dash in argv[0])
  ["noglob", { kind: "plain", flag: [] }],
  ["nocorrect", { kind: "plain", flag: [] }],
  ["-", { kind: "plain", flag: [] }],
  ["toybox", { kind: "plain", flag: [] }],
  ["dbus-run-session", { kind: "plain", value: ["--config-file", "--dbus-daemon"], flag: [] }],
  ["xvfb-run", { kind: "plain", value: ["-n", "--server-num", "-s", "--server-args", "-e", "--error-file", "-f", "--auth-file", "-p", "--xauth-protocol", "-w", "--wait"], flag: ["-a", "--auto-servernum"] }],
  ["catchsegv", { kind: "plain", flag: [] }],
  ["valgrind", { kind: "plain", flag: ["-q", "-v"] }],
  ["systemd-run", { kind: "plain", value: ["-u", "--unit", "-p", "--property", "-E", "--setenv", "--uid", "--gid", "--nice", "--working-directory", "-M", "--machine", "-H", "--host", "--slice", "--description"], flag: [...letters("tPGSqr"), "--user", "--system", "--scope", "--pty", "--pipe", "--wait", "--collect", "--quiet", "--no-block", "--same-dir", "--remain-after-exit", "--shell"], bare: "shell" }],
  ["parallel", { kind: "plain", value: ["-j", "--jobs", "-S", "--sshlogin", "--joblog", "-a", "--arg-file", "-d", "--delimiter", "-I", "--timeout", "--halt"], flag: [...letters("kqv0u"), "--keep-order", "--quiet", "--verbose", "--null", "--ungroup", "--will-cite", "--no-notice", "--dry-run", "--bar", "--eta", "--progress"], bare: "stdin" }],
  ["find", { kind: "find" }],
  ["numactl", { kind: "plain", value: ["-C", "--cpunodebind", "-N", "-m", "--membind", "-p", "--preferred", "-i", "--interleave", "--physcpubind"], flag: ["-a", "--all", "-l", "--localalloc", "-b", "--balancing", "-s", "--show", "-H", "--hardware"] }],
  ["cgexec", { kind: "plain", value: ["-g"], flag: ["--sticky"] }],
  ["fakechroot", { kind: "plain", value: ["-l", "--lib", "-d", "--elfloader", "-e", "--environment", "-c", "--config-dir"], flag: ["-s", "--use-system-libs"] }],
  ["setpriv", { kind: "plain", value: ["--reuid", "--regid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile", "--ruid", "--euid", "--rgid", "--egid"], flag: ["--clear-groups", "--keep-groups", "--init-groups", "--no-new-privs", "--reset-env", "-d", "--dump", "--nnp"] }],
  ["chpst", { kind: "plain", value: letters("uUbenldaomsftcr"), flag: letters("PvV012") }],
  ["softlimit", { kind: "plain", value: letters("mdsloaprtfc"), flag: [] }],
  ["prlimit", { kind: "plain", value: ["-p", "--pid", "-o", "--output"], flag: ["--noheadings", "--raw", "--verbose"] }],
  ["trickle", { kind: "plain", value: letters("udwtlns"), flag: letters("vsV") }],
  ["nocache", { kind: "plain", flag: [] }],
  ["eatmydata", { kind: "plain", flag: [] }],
  ["sshpass", { kind: "plain", value: letters("pfdPe"), flag: ["-v"] }],
  ["entr", { kind: "xargs", flag: letters("acdnprsz") }],
  ["cpulimit", { kind: "plain", value: ["-l", "--limit", "-p", "--pid", "-e", "--exe"], flag: ["-z", "--lazy", "-i", "--include-children", "-v", "--verbose", "-q", "--quiet"] }],
  ["rlwrap", { kind: "plain", value: letters("aAbCDefFgHlmoOpPqRsStwz"), flag: letters("cEinNrv") }],
  // `runcon CONTEXT CMD`, or `runcon [-c] [-u USER] [-r ROLE] [-t TYPE] [-l RANGE] CMD`
  ["runcon", { kind: "plain", skip: 1, skipUnless: ["-u", "--user", "-r", "--role", "-t", "--type", "-l", "--range"], value: ["-u", "--user", "-r", "--role", "-t", "--type", "-l", "--range"], flag: ["-c", "--compute"] }],
  ["aa-exec", { kind: "plain", value: ["-p", "--profile", "-n", "--namespace"], flag: ["-i", "--immediate", "-v", "--verbose", "-d", "--debug"] }],
  ["systemd-nspawn", { kind: "plain", value: ["-D", "--directory", "-M", "--machine", "-u", "--user", "--bind", "--bind-ro", "-E", "--setenv", "--chdir"], flag: ["-q", "--quiet", "-x", "--ephemeral", "--private-network", "-a", "--as-pid2", "--pipe"], bare: "shell" }],
  // util-linux setarch: `setarch ARCH [options] [CMD]`; its arch-named links (`linux32`, `x86_64`,
  // …) take no ARCH. Without a command they start $SHELL.
  ["setarch", { kind: "plain", skip: 1, permute: true, ...SETARCH_OPTIONS }],
  ...SETARCH_LINKS.map((n): [string, WrapperSpec] => [n, { kind: "plain", ...SETARCH_OPTIONS }]),
  ["start-stop-daemon", { kind: "plain" }], // handled in analyze.ts: the program is an option's value
  ["ssh-agent", { kind: "plain", value: ["-a", "-E", "-t", "-P", "-O"], flag: ["-c", "-s", "-D", "-d"], noRun: ["-k"] }],
  ["schroot", {
    kind: "plain",
    value: ["-c", "--chroot", "-u", "--user", "-d", "--directory", "-n", "--session-name", "-o", "--option"],
    flag: [...letters("apqvbr"), "--all", "--all-chroots", "--all-sessions", "--all-source-chroots", "--preserve-environment", "--quiet", "--verbose", "--begin-session", "--run-session", "--automatic-session", "--force"],
    noRun: [...letters("lihVe"), "--list", "--info", "--config", "--location", "--help", "--version", "--end-session", "--recover-session"],
    bare: "shell",
  }],
  ["lxc-attach", {
    kind: "plain",
    value: ["-n", "--name", "-P", "--lxcpath", "-s", "--namespaces", "-v", "--set-var", "--keep-var", "-u", "--uid", "-g", "--gid", "-a", "--arch", "-L", "--pty-log", "-o", "--logfile", "-l", "--logpriority", "-f", "--rcfile", "--context"],
    flag: ["-R", "--remount-sys-proc", "--clear-env", "--keep-env", "-q", "--quiet", "-e", "--elevated-privileges"],
    bare: "shell",
  }],
  ["flatpak-spawn", {
    kind: "plain",
    value: ["--forward-fd", "--env", "--unset-env", "--directory", "--sandbox-expose", "--sandbox-expose-ro", "--sandbox-flag", "--sandbox-a11y-own-name", "--app-path", "--usr-path"],
    flag: ["--host", "--watch-bus", "--expose-pids", "--share-pids", "--clear-env", "--latest-version", "--no-network", "--sandbox", "-v", "--verbose"],
  }],
  ["uclampset", { kind: "plain", value: ["-m", "-M"], flag: ["-a", "--all-tasks", "-R", "--reset-on-fork", "-v", "--verbose", "--max", "--min"], noRun: ["-p", "--pid", "-s", "--system", "-V", "--version", "-h", "--help"] }],
  ["faketime", { kind: "plain", skip: 1, value: ["-p", "--date-prog"], flag: ["-m", "-f", "--exclude-monotonic", "--disable-shm"], noRun: ["-h", "--help", "-v", "--version"] }],
  ["chronic", { kind: "plain", flag: ["-e", "-v"] }],
  ["ifne", { kind: "plain", flag: ["-n"] }],
  ["dbus-launch", { kind: "plain", value: ["--autolaunch", "--config-file"], flag: ["--sh-syntax", "--csh-syntax", "--auto-syntax", "--binary-syntax", "--close-stderr", "--exit-with-session", "--exit-with-x11"], noRun: ["--version", "--help"] }],
  // GNU parallel's semaphore front end: `sem [options] CMD`.
  ["sem", { kind: "plain", value: ["-j", "--jobs", "--id", "--semaphorename", "--st", "--semaphoretimeout"], flag: ["--fg", "--bg", "-u", "--ungroup", "--will-cite", "-q", "--quiet"], noRun: ["--wait"] }],
  ["capsh", { kind: "shellArgs", value: ["--caps", "--drop", "--inh", "--user", "--uid", "--gid", "--groups", "--keep", "--secbits", "--chroot", "--addamb", "--delamb", "--iab", "--mode"], flag: ["--print", "--noamb", "--noenv", "--quiet", "--has-p", "--has-i", "--has-a", "--has-b"] }],
];

/**
 * The options of `perf stat|record|trace|ftrace` this analysis follows (any other option makes
 * the command unknowable; `perf stat -- CMD` always works).
 */
const PERF_OPTIONS = {
  value: ["-e", "--event", "-p", "--pid", "-t", "--tid", "-r", "--repeat", "-C", "--cpu", "-o", "--output", "-x", "--field-separator", "-G", "--cgroup", "-I", "--interval-print", "-M", "--metrics", "-F", "--freq", "-c", "--count", "-m", "--mmap-pages", "-u", "--uid", "--call-graph", "-D", "--delay", "--filter", "--duration", "--switch-output", "--max-size", "-T", "--threshold"],
  flag: [...letters("aAdgnqsvBNPRTSz"), "--all-cpus", "--append", "--detailed", "--null", "--quiet", "--scale", "--verbose", "--no-buildid", "--no-inherit", "--raw-samples", "--sample-cpu", "--timestamp", "--per-core", "--per-socket", "--per-thread", "--no-aggr", "--summary", "--big-num", "--no-big-num", "--topdown", "--all-user", "--all-kernel", "--no-syscalls", "--sched"],
} as const satisfies Partial<WrapperSpec>;

/**
 * Programs that run commands through a subcommand: `docker exec CONTAINER CMD`, `kubectl exec
 * POD -- CMD`, `ip netns exec NAME CMD`. The words after the subcommand follow `spec`.
 */
export const SUBCOMMAND_WRAPPERS: ReadonlyMap<string, readonly { readonly path: readonly string[]; readonly spec: WrapperSpec }[]> = new Map([
  ["docker", [{ path: ["exec"], spec: { kind: "plain", skip: 1, value: ["-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"], flag: [...letters("idt"), "--interactive", "--tty", "--detach", "--privileged"] } }]],
  ["podman", [{ path: ["exec"], spec: { kind: "plain", skip: 1, value: ["-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"], flag: [...letters("idtl"), "--interactive", "--tty", "--detach", "--privileged", "--latest"] } }]],
  ["kubectl", [{ path: ["exec"], spec: { kind: "plain", dashdash: true } }]],
  ["ip", [{ path: ["netns", "exec"], spec: { kind: "plain", skip: 1, flag: [] } }]],
  ["perf", [
    { path: ["stat"], spec: { kind: "plain", ...PERF_OPTIONS } },
    { path: ["record"], spec: { kind: "plain", ...PERF_OPTIONS } },
    { path: ["trace"], spec: { kind: "plain", ...PERF_OPTIONS } },
    { path: ["ftrace"], spec: { kind: "plain", ...PERF_OPTIONS } },
  ]],
]);

/**
 * tmux (and byobu, which passes its arguments to tmux) runs commands the analysis cannot see
 * when it starts a session (a bare `tmux`, or only global options), runs `-c CMD`, or gets a
 * subcommand that creates panes, types keys or runs shell commands.
 */
function tmuxRuns(args: readonly string[]): boolean {
  const valued = new Set(["-f", "-L", "-S", "-T"]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    if (a === "--") return i + 1 >= args.length || TMUX_RUNNERS.test(args[i + 1] ?? "");
    if (!a.startsWith("-") || a === "-") return TMUX_RUNNERS.test(a);
    if (a.slice(1).includes("c")) return true; // -c SHELL-COMMAND
    if (valued.has(a)) i++;
  }
  return true; // no subcommand: new-session
}

const TMUX_RUNNERS = /^(new|new-session|new-window|neww|split-window|splitw|send-keys|send|respawn-pane|respawnp|respawn-window|respawnw|run-shell|run|if-shell|if|source-file|source|command-prompt|pipe-pane|pipep|display-popup|popup)$/;

/**
 * Programs that, with these subcommands or options, run commands the analysis cannot see
 * (a terminal multiplexer typing into other shells, a job scheduler reading its input):
 * unknowable.
 */
export const HIDDEN_RUNNERS: ReadonlyMap<string, (args: readonly string[]) => boolean> = new Map([
  ["tmux", tmuxRuns],
  ["byobu", tmuxRuns],
  ["byobu-tmux", tmuxRuns],
  // bare `screen` starts a shell; only listing and reattaching are let through
  ["screen", (args: readonly string[]) => args.length === 0 || !args.every((a) => a === "-ls" || a === "-list" || a === "-r" || a === "-x" || a === "-R")],
  ["byobu-screen", (args: readonly string[]) => args.length === 0 || !args.every((a) => a === "-ls" || a === "-list" || a === "-r" || a === "-x" || a === "-R")],
  // `newgrp [-] [GROUP]` starts a new shell reading its input
  ["newgrp", () => true],
  ["at", () => true],
  ["batch", () => true],
  ["expect", () => true],
  ["gdb", (args: readonly string[]) => args.some((a) => a === "-ex" || a === "-x" || a.startsWith("--eval-command") || a === "--batch" || a === "-batch")],
  ["crontab", (args: readonly string[]) => !args.every((a) => a === "-l" || a === "-u" || !a.startsWith("-"))],
  ["bwrap", () => true],
  ["proot", () => true],
  ["machinectl", (args: readonly string[]) => args.some((a) => a === "shell" || a === "login")],
]);

export const WRAPPERS: ReadonlyMap<string, WrapperSpec> = new Map(entries);

/**
 * Programs and builtins known not to run their arguments as commands: the fallback for unknown
 * programs (analyze.ts `unknownRunner`) leaves them alone, so `grep rm notes.txt`, `which bash`,
 * `cp -- a b` and `pkill bash` stay allowed.
 */
export const NON_RUNNERS: ReadonlySet<string> = new Set([
  // shell builtins and keywords
  "echo", "printf", "test", "[", "[[", "true", "false", ":", "cd", "pushd", "popd", "dirs", "pwd", "read", "declare", "typeset", "local",
  "export", "readonly", "unset", "set", "shopt", "exit", "return", "wait", "jobs", "fg", "bg", "disown", "history", "ulimit", "umask",
  "getopts", "shift", "mapfile", "readarray", "let", "type", "help", "logout", "suspend", "times", "caller", "kill",
  // looking things up
  "which", "whereis", "whatis", "apropos", "info", "locate", "plocate", "mlocate", "getent", "id", "groups", "whoami", "who", "w", "last",
  "grep", "egrep", "fgrep", "rg", "ag", "ack", "ps", "pgrep", "pkill", "pidof", "killall", "lsof", "fuser", "file", "stat",
  // files and text (coreutils and friends)
  "ls", "dir", "vdir", "tree", "cat", "tac", "nl", "head", "tail", "less", "more", "most", "wc", "sort", "uniq", "cut", "tr", "paste",
  "join", "comm", "diff", "diff3", "sdiff", "cmp", "fold", "fmt", "column", "expand", "unexpand", "rev", "shuf", "split", "csplit",
  "touch", "mkdir", "rmdir", "chmod", "chown", "chgrp", "chattr", "lsattr", "getfacl", "setfacl", "du", "df", "mv", "cp", "ln",
  "install", "basename", "dirname", "realpath", "readlink", "mktemp", "md5sum", "sha1sum", "sha256sum", "sha512sum", "b2sum", "cksum",
  "base64", "base32", "xxd", "od", "hexdump", "strings", "iconv", "jq", "yq", "date", "sleep", "seq", "yes", "uname", "hostname",
  "uptime", "free", "lsblk", "blkid", "mount", "umount", "journalctl", "dmesg", "useradd", "usermod", "userdel", "groupadd", "chsh",
  "passwd", "ping", "dig", "host", "nslookup", "ss", "netstat", "openssl", "gzip", "gunzip", "bzip2", "xz", "zstd", "zcat", "unzip",
  "rm", "unlink", "shred", "truncate", "tee", "curl", "wget",
]);

/**
 * Programs whose first non-option word is a subcommand (`docker rm`, `apt remove`, `systemctl
 * restart`): the fallback does not count that word as a command; later words count.
 */
export const SUBCOMMAND_PROGRAMS: ReadonlySet<string> = new Set([
  "docker", "podman", "nerdctl", "ctr", "crictl", "kubectl", "oc", "helm", "systemctl", "service", "apt", "apt-get", "apt-cache",
  "dpkg", "dnf", "yum", "zypper", "apk", "snap", "npm", "pnpm", "yarn", "pip", "pip3", "cargo", "go", "gem", "bundle", "composer",
  "terraform", "aws", "gcloud", "az", "gh", "brew", "svn", "hg", "lxc", "incus", "virsh", "nmcli", "ip", "perf", "tmux", "byobu",
]);
