/**
 * The third shell bypass corpus: programs that run a command (or start a shell reading its
 * input) that were not in the wrapper table, found by a review with the real evaluator, plus
 * the fallback rule for programs without a table (analyze.ts `unknownRunner`) and the
 * false positives it must not cause. Appended to SHELL_BYPASS_CASES (bypass-cases.ts), so the
 * evaluator test and the SSH wire test run them too. Policy: BYPASS_DENIED_PROGRAMS denied.
 *
 * `was: through` marks cases the evaluator let through before this list.
 */
import type { ShellBypassCase } from "./bypass-cases.js";

export const SHELL_BYPASS_CASES_3: readonly ShellBypassCase[] = [
  // setarch and its arch-named links
  { command: "setarch x86_64 rm -rf /tmp/x", expect: "deny", note: "was: through" },
  { command: "setarch x86_64 -R rm x", expect: "deny", note: "options after the arch" },
  { command: "setarch x86_64", expect: "deny", note: "was: through (starts $SHELL reading its input)" },
  { command: "setarch --list", expect: "allow" },
  { command: "x86_64 rm x", expect: "deny", note: "was: through" },
  { command: "i386 rm x", expect: "deny", note: "was: through" },
  { command: "linux32 rm x", expect: "deny", note: "was: through" },
  { command: "linux64 -R rm x", expect: "deny", note: "was: through" },
  { command: "linux32", expect: "deny", note: "starts a shell" },
  // programs named by an option's value
  { command: "start-stop-daemon -S -x /bin/rm -- -rf /", expect: "deny", note: "was: through" },
  { command: "start-stop-daemon --start --exec=/bin/rm -- x", expect: "deny" },
  { command: "start-stop-daemon -Sqx /bin/rm -- x", expect: "deny", note: "clustered options" },
  { command: "start-stop-daemon -S -x /usr/bin/true -a /bin/rm -- x", expect: "deny", note: "--startas is what runs" },
  { command: "start-stop-daemon -S -b -x /usr/bin/sleep -- 1", expect: "allow" },
  { command: "start-stop-daemon -K -x /bin/rm", expect: "allow", note: "stopping runs nothing" },
  // wrappers that were missing
  { command: "ssh-agent sh -c 'rm x'", expect: "deny", note: "was: through" },
  { command: "ssh-agent bash", expect: "deny", note: "was: through (bash reads its input)" },
  { command: "ssh-agent -s", expect: "allow" },
  { command: "schroot -c jammy -- rm x", expect: "deny", note: "was: through" },
  { command: "schroot -c jammy", expect: "deny", note: "starts a login shell" },
  { command: "lxc-attach -n box -- rm x", expect: "deny", note: "was: through" },
  { command: "lxc-attach -n box", expect: "deny", note: "starts a shell" },
  { command: "flatpak-spawn --host rm x", expect: "deny", note: "was: through" },
  { command: "runcon u:r:t rm x", expect: "deny", note: "was: through (the context is a positional word)" },
  { command: "runcon -t unconfined_t rm x", expect: "deny" },
  { command: "uclampset -m 0 -M 512 rm x", expect: "deny", note: "was: through" },
  { command: "faketime '2020-01-01 10:00:00' rm x", expect: "deny", note: "was: through" },
  { command: "faketime -f @0 rm x", expect: "deny" },
  { command: "chronic rm x", expect: "deny", note: "was: through" },
  { command: "ifne -n rm x", expect: "deny", note: "was: through" },
  { command: "perf stat rm x", expect: "deny", note: "was: through" },
  { command: "perf record -g rm x", expect: "deny", note: "was: through" },
  { command: "perf trace -- rm x", expect: "deny", note: "was: through" },
  { command: "perf report", expect: "allow" },
  { command: "dbus-launch rm x", expect: "deny", note: "was: through" },
  { command: "dbus-launch --exit-with-session reboot", expect: "deny", note: "was: through" },
  { command: "sem -j 2 rm x", expect: "deny", note: "was: through" },
  { command: "sem --wait", expect: "allow" },
  // programs that start a shell reading its input
  { command: "newgrp", expect: "deny", note: "was: through" },
  { command: "newgrp - staff", expect: "deny", note: "was: through" },
  { command: "script -q /dev/null", expect: "deny", note: "was: through (the file was taken as the program)" },
  { command: "script /dev/null -q", expect: "deny", note: "options after the file" },
  { command: "script -q /dev/null -c 'rm x'", expect: "deny", note: "-c after the file" },
  { command: "script -q -c 'ls' /dev/null", expect: "allow" },
  { command: "tmux", expect: "deny", note: "was: through (a new session runs a shell)" },
  { command: "tmux -L sock", expect: "deny", note: "only global options: a new session" },
  { command: "tmux -c 'rm x'", expect: "deny", note: "-c runs a shell command" },
  { command: "tmux list-sessions", expect: "allow" },
  { command: "screen", expect: "deny", note: "was: through" },
  { command: "byobu", expect: "deny", note: "was: through" },
  { command: "byobu ls", expect: "allow" },
  // the fallback for programs without a table
  { command: "unknown-runner -- rm x", expect: "deny", note: "an unknown program with -- and a word" },
  { command: "unknown-runner --flag rm x", expect: "deny", note: "a denied program among the arguments" },
  { command: "unknown-runner /bin/rm x", expect: "deny", note: "by basename" },
  { command: "unknown-runner bash", expect: "deny", note: "a shell among the arguments" },
  { command: "unknown-runner reboot", expect: "deny" },
  { command: "docker run alpine rm x", expect: "deny", note: "after the subcommand" },
  { command: "unknown-tool build --verbose out/", expect: "allow", note: "no shell or denied program among its words" },
  // what the fallback must leave alone
  { command: "git rm notes.txt", expect: "allow", note: "git's subcommand (git's own code runners are judged apart)" },
  { command: "git checkout -- file.txt", expect: "allow" },
  { command: "docker rm old-container", expect: "allow", note: "a subcommand word is not a command" },
  { command: "grep rm notes.txt", expect: "allow" },
  { command: "which bash", expect: "allow" },
  { command: "echo rm", expect: "allow" },
  { command: "pkill bash", expect: "allow" },
  { command: "cp -- a.txt b.txt", expect: "allow" },
  { command: "usermod -s /bin/bash deploy", expect: "allow" },
];
