/**
 * Follows what is typed into an interactive shell so each line can be judged at Enter
 * (best effort: the gateway sees keystrokes, not the shell's line buffer).
 *
 * Printable text is appended, Backspace/DEL removes the last character, Ctrl-U clears the
 * line. Ctrl-C, and Ctrl-D on an empty line, also cancel an unfinished multi-line command in a
 * shell (`for … do` waiting for `done`): they are yielded as `cancel` so the caller forgets the
 * lines it was collecting. Ctrl-W removes the last word but marks the line `edited` (shells disagree on
 * what a word is), and so does Backspace on a line with non-ASCII text (readline deletes a
 * combining mark together with its base character).
 *
 * Every other control key and escape sequence (arrows, Home/End, Tab completion, history
 * search, Ctrl-O operate-and-get-next, Ctrl-X Ctrl-E edit-and-execute, …) may make the shell
 * change *or run* its line without Enter, so it is held back like Enter: it yields the line so
 * far as `edited`, with the key as its `enter` bytes, and the key is forwarded only if that line
 * is allowed (the policy refuses edited lines when guards apply). Bracketed-paste markers are
 * not edits. Enter is `\r` (PTY) or `\n`.
 *
 * Without a PTY no line editor runs: every byte but Enter is part of the line as typed
 * (`{ pty: false }`), so DEL or Ctrl-U cannot hide text the shell will still read.
 *
 * Pure: `feed` returns what to forward at once and the lines that wait for a decision.
 */
import { StringDecoder } from "node:string_decoder";

export type TrackerOutput =
  | { readonly kind: "pass"; readonly bytes: Buffer }
  | { readonly kind: "cancel"; readonly bytes: Buffer }
  | { readonly kind: "line"; readonly line: string; readonly edited: boolean; readonly enter: Buffer };

const ESC = 0x1b;

/**
 * What discards a typed line the gateway refused, at a terminal: End then Ctrl-U. Readline,
 * libedit and zle move to the end and erase the line; a terminal in canonical mode takes Ctrl-E
 * as text and erases the whole line at Ctrl-U (VKILL). Unlike Ctrl-C it neither signals the
 * program reading the terminal (a script reading lines would die) nor makes the terminal flush
 * input the program has not read yet (lines typed ahead, already allowed, would be lost).
 */
export const KILL_LINE: Buffer = Buffer.from("\x05\x15");

export class LineTracker {
  #line = "";
  #edited = false;
  #decoder = new StringDecoder("utf8");
  /** Inside an escape sequence: the bytes seen so far (ESC …). */
  #escape: number[] | undefined;
  /** Bytes are never held back except Enter, so a line is at most this long before it is judged as edited. */
  readonly #maxLine: number;
  readonly #pty: boolean;

  constructor(maxLine = 16 * 1024, options: { readonly pty?: boolean } = {}) {
    this.#maxLine = maxLine;
    this.#pty = options.pty ?? true;
  }

  /** A key that may change or run the line: yield the line as edited, with the key held back. */
  #key(out: TrackerOutput[], key: Buffer): void {
    this.#line += this.#decoder.end();
    out.push({ kind: "line", line: this.#line, edited: true, enter: key });
    this.#line = "";
    this.#edited = false;
    this.#decoder = new StringDecoder("utf8");
  }

  feed(data: Buffer): TrackerOutput[] {
    const out: TrackerOutput[] = [];
    let passStart = 0;
    for (let i = 0; i < data.length; i++) {
      const b = data[i] ?? 0;
      if (this.#escape !== undefined) {
        this.#escape.push(b);
        if (this.#escapeDone()) {
          const bytes = Buffer.from(this.#escape);
          const seq = bytes.toString("latin1");
          this.#escape = undefined;
          if (seq === "\x1b[200~" || seq === "\x1b[201~") out.push({ kind: "pass", bytes });
          else this.#key(out, bytes);
        }
        passStart = i + 1;
        continue;
      }
      if (b === 0x0d || b === 0x0a) {
        if (i > passStart) out.push({ kind: "pass", bytes: data.subarray(passStart, i) });
        // \r\n counts as one Enter.
        const enterEnd = b === 0x0d && data[i + 1] === 0x0a ? i + 2 : i + 1;
        this.#line += this.#decoder.end();
        out.push({ kind: "line", line: this.#line, edited: this.#edited, enter: data.subarray(i, enterEnd) });
        this.#line = "";
        this.#edited = false;
        this.#decoder = new StringDecoder("utf8");
        i = enterEnd - 1;
        passStart = enterEnd;
        continue;
      }
      if (!this.#pty) {
        // No line editor: the byte is part of the line as the shell reads it.
        this.#line += this.#decoder.write(data.subarray(i, i + 1));
        if (this.#line.length > this.#maxLine) this.#edited = true;
        continue;
      }
      if (b === ESC) {
        if (i > passStart) out.push({ kind: "pass", bytes: data.subarray(passStart, i) });
        this.#escape = [b];
        passStart = i + 1;
        continue;
      }
      if (b === 0x7f || b === 0x08) {
        // eslint-disable-next-line no-control-regex
        if (/[^\x00-\x7f]/.test(this.#line)) this.#edited = true;
        const chars = Array.from(this.#line);
        chars.pop();
        this.#line = chars.join("");
        continue;
      }
      if (b === 0x15) {
        this.#line = "";
        this.#edited = false;
        continue;
      }
      if (b === 0x03 || (b === 0x04 && this.#line === "")) {
        if (i > passStart) out.push({ kind: "pass", bytes: data.subarray(passStart, i) });
        out.push({ kind: "cancel", bytes: data.subarray(i, i + 1) });
        passStart = i + 1;
        this.#line = "";
        this.#edited = false;
        continue;
      }
      if (b === 0x17) {
        this.#line = this.#line.replace(/[^ \t]+[ \t]*$/, "");
        this.#edited = true;
        continue;
      }
      // Ctrl-L redraws: it does not change the line.
      if (b === 0x0c) continue;
      if (b < 0x20) {
        if (i > passStart) out.push({ kind: "pass", bytes: data.subarray(passStart, i) });
        this.#key(out, data.subarray(i, i + 1));
        passStart = i + 1;
        continue;
      }
      this.#line += this.#decoder.write(data.subarray(i, i + 1));
      if (this.#line.length > this.#maxLine) this.#edited = true;
    }
    if (passStart < data.length) out.push({ kind: "pass", bytes: data.subarray(passStart) });
    return out;
  }

  /** Text typed since the last Enter, if any (input ended without a newline). */
  pendingLine(): { readonly line: string; readonly edited: boolean } | undefined {
    const line = this.#line + this.#decoder.end();
    this.#decoder = new StringDecoder("utf8");
    this.#line = "";
    if (line === "" && !this.#edited) return undefined;
    const edited = this.#edited;
    this.#edited = false;
    return { line, edited };
  }

  /** ESC x, ESC [ params final, ESC O x: ended? */
  #escapeDone(): boolean {
    const e = this.#escape ?? [];
    if (e.length < 2) return false;
    const second = e[1] ?? 0;
    if (second === 0x5b /* [ */) {
      if (e.length < 3) return false;
      const last = e[e.length - 1] ?? 0;
      return (last >= 0x40 && last <= 0x7e) || e.length > 32;
    }
    if (second === 0x4f /* O */) return e.length >= 3;
    return true;
  }
}
