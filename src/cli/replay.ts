/**
 * `airlock sessions replay ID` for terminal sessions: plays an asciicast v2 recording (SSH
 * shells and execs) in the terminal at its recorded pace, divided by `speed` (0 = no delay).
 * Only output events are written; input, resizes and markers are skipped (markers, such as
 * refused lines, are shown as a dim note).
 */
import { parseCast } from "../recording/asciicast.js";

export interface ReplayIo {
  write(text: string): void;
  sleep(ms: number): Promise<void>;
}

/** Longest pause kept when replaying (idle time is compressed to this). */
const MAX_PAUSE_MS = 5_000;

export async function playCast(text: string, speed: number, io: ReplayIo): Promise<number> {
  const { events } = parseCast(text);
  let previous = 0;
  let shown = 0;
  for (const [t, kind, data] of events) {
    const wait = speed === 0 ? 0 : Math.min(MAX_PAUSE_MS, (t - previous) * 1000) / speed;
    previous = t;
    if (kind !== "o" && kind !== "m") continue;
    if (wait > 0) await io.sleep(wait);
    io.write(kind === "o" ? data : `\r\n\x1b[2m[${data}]\x1b[0m\r\n`);
    shown++;
  }
  return shown;
}
