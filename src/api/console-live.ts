/**
 * The console's live view of a session (issue 17): what the session records, as it is written.
 *
 *   GET /v1/console/sessions/:id/live   user: Server-Sent Events (same visibility as the session's replay)
 *
 * Events, in order:
 *   `entry`           one recording entry (statement and decision, result with the masked rows
 *                     the client saw, HTTP exchange, end), every entry exactly once
 *   `terminal-start`  {width, height}: the session has a terminal recording (SSH, kubectl exec)
 *   `terminal`        a JSON string: terminal output, as the client saw it (input is not sent)
 *   `end`             {}: the session ended and everything it recorded was sent; the stream closes
 *
 * It taps the recording writers of this gateway (src/recording/live.ts): the backlog comes from
 * the files, the rest as each line is accepted, so nothing is polled from disk while a writer
 * is open. A session held by another gateway of a shared store (no file of it here) is read
 * from the copy in the store instead (recording/store-mirror.ts): polled every second, so the
 * view trails the session by the mirror's flush interval (2 s) plus the poll; it ends once the
 * session has ended and its recording's end entry arrived (or 5 s after the end at the latest).
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import type { Caller } from "./auth.js";
import { callerOf } from "./auth.js";
import { parseInput } from "./parse.js";
import { recordingEntry } from "./console-schemas.js";
import { followLines, liveFiles, type Following } from "../recording/live.js";
import { recordingEntrySchema } from "../recording/file-store.js";
import type { RecordingKind } from "../store/recording-chunks.js";
import { stat } from "node:fs/promises";

export interface ConsoleLiveDeps {
  /** Throws GW_NOT_FOUND when the caller may not see the session (or there is none). */
  readonly visibleSession: (caller: Caller, id: string) => Promise<unknown>;
  /** Whether the session runs on this gateway now. */
  readonly isLive: (id: string) => boolean;
  /** Where the session's recordings are written. */
  readonly paths: (id: string) => { readonly recording: string; readonly cast: string };
  readonly logger: Logger;
  /** How often a follow not yet attached looks for its writer (default 250 ms). */
  readonly pollMs?: number;
  /** Recordings of sessions held by other gateways, from the shared store. */
  readonly elsewhere?: {
    /** Lines from chunk `fromSeq` on; `next`: the chunk to ask for next. */
    readonly lines: (id: string, kind: RecordingKind, fromSeq: number) => Promise<{ readonly lines: readonly string[]; readonly next: number }>;
    /** Whether the session has not ended (per the store). */
    readonly running: (id: string) => Promise<boolean>;
    /** Default 1000 ms. */
    readonly pollMs?: number;
  };
}

/** After the session ended, how long a remote follow waits for the recording's last lines. */
const REMOTE_END_GRACE_MS = 5000;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

const idParam = z.object({ id: z.string().min(1).max(200) });
const castHeader = z.object({ width: z.number(), height: z.number() });
const castEvent = z.tuple([z.number(), z.string(), z.string()]);

type FollowState = { readonly state: "waiting" } | { readonly state: "following"; readonly f: Promise<Following | undefined> } | { readonly state: "done" };

export function registerConsoleLiveRoutes(app: FastifyInstance, deps: ConsoleLiveDeps): void {
  const user = { config: { airlockAccess: "user" as const } };
  const pollMs = deps.pollMs ?? 250;

  app.get("/v1/console/sessions/:id/live", user, async (request, reply) => {
    const { id } = parseInput(idParam, request.params, "id");
    await deps.visibleSession(callerOf(request), id);
    const paths = deps.paths(id);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", connection: "keep-alive" });
    const send = (event: string, data: unknown): void => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    let stopped = false;
    let castLines = 0;
    let sawEnd = false;
    const onEntry = (line: string): void => {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        return;
      }
      const e = recordingEntrySchema.safeParse(json);
      if (!e.success) return;
      if (e.data.kind === "end") sawEnd = true;
      const view = recordingEntry.safeParse(e.data);
      if (view.success) send("entry", view.data);
    };
    const onCast = (line: string): void => {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        return;
      }
      if (castLines++ === 0) {
        const h = castHeader.safeParse(json);
        if (h.success) send("terminal-start", { width: h.data.width, height: h.data.height });
        return;
      }
      const ev = castEvent.safeParse(json);
      // Output only: what the client typed (which may include a password at a prompt) stays in the replay file.
      if (ev.success && ev.data[1] === "o") send("terminal", ev.data[2]);
    };
    const follows: Record<"recording" | "cast", FollowState> = { recording: { state: "waiting" }, cast: { state: "waiting" } };
    let timer: NodeJS.Timeout | undefined;
    let keepAlive = 0;
    const stop = (): void => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const k of ["recording", "cast"] as const) {
        const s = follows[k];
        if (s.state === "following") void s.f.then((f) => f?.stop());
      }
    };
    request.raw.once("close", stop);
    res.once("close", stop);

    const elsewhere = deps.elsewhere;
    if (elsewhere !== undefined && !deps.isLive(id) && !(await exists(paths.recording))) {
      // Held (or last held) by another gateway: follow the copy in the store.
      const next: Record<RecordingKind, number> = { jsonl: 0, cast: 0 };
      let endedAt: number | undefined;
      let ticks = 0;
      const remoteTick = async (): Promise<void> => {
        const running = endedAt === undefined ? await elsewhere.running(id) : false;
        if (!running) endedAt ??= Date.now();
        for (const kind of ["jsonl", "cast"] as const) {
          const got = await elsewhere.lines(id, kind, next[kind]);
          next[kind] = got.next;
          for (const l of got.lines) (kind === "jsonl" ? onEntry : onCast)(l);
        }
        if (endedAt !== undefined && (sawEnd || Date.now() - endedAt >= REMOTE_END_GRACE_MS)) {
          send("end", {});
          res.end();
          stop();
          return;
        }
        if (++ticks % 15 === 0 && !res.writableEnded) res.write(": keep-alive\n\n");
      };
      const loop = (): void => {
        if (stopped) return;
        remoteTick()
          .catch((e: unknown) => deps.logger.warn({ err: e, sessionId: id }, "console: live view could not read a recording from the store"))
          .finally(() => {
            if (!stopped) timer = setTimeout(loop, elsewhere.pollMs ?? 1000);
          });
      };
      loop();
      return;
    }

    const tick = (): void => {
      if (stopped) return;
      const live = deps.isLive(id);
      for (const k of ["recording", "cast"] as const) {
        if (follows[k].state !== "waiting") continue;
        const path = paths[k];
        // A writer not open yet (a terminal starts after the session does) is looked for again
        // next tick; once the session is over, whatever the file holds is the recording.
        if (liveFiles.get(path) === undefined && live) continue;
        const f = followLines(path, k === "recording" ? onEntry : onCast, () => {
          follows[k] = { state: "done" };
        }).catch((e: unknown) => {
          deps.logger.warn({ err: e, sessionId: id }, "console: live view could not read a recording");
          follows[k] = { state: "done" };
          return undefined;
        });
        follows[k] = { state: "following", f };
      }
      if (!live && follows.recording.state === "done" && follows.cast.state === "done") {
        send("end", {});
        res.end();
        stop();
        return;
      }
      if (++keepAlive % Math.max(1, Math.round(15_000 / pollMs)) === 0 && !res.writableEnded) res.write(": keep-alive\n\n");
      timer = setTimeout(tick, pollMs);
    };
    tick();
  });
}
