/**
 * A minimal raw PostgreSQL client for tests that need what drivers won't send: arbitrary
 * start-up parameters, pipelined batches, fastpath calls. Logs in with a cleartext password,
 * writes `bytes` in one go, and collects every message until `readyCount` ReadyForQuery.
 */
import { connect } from "node:net";
import { serialize } from "pg-protocol";

export interface RawSessionOptions {
  readonly port: number;
  readonly database: string;
  readonly password: string;
  readonly bytes: Buffer;
  readonly readyCount?: number;
  /** Extra start-up parameters (e.g. search_path). */
  readonly startup?: Readonly<Record<string, string>>;
  /** Instead of counting: end at the first ReadyForQuery after a DataRow containing this text. */
  readonly untilRow?: string;
  readonly timeoutMs?: number;
}

export async function rawSession(o: RawSessionOptions): Promise<Buffer> {
  const socket = connect(o.port, "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const chunks: Buffer[] = [];
  let pending = Buffer.alloc(0);
  let loggedIn = false;
  let ready = 0;
  let sawRow = false;
  const want = o.readyCount ?? 1;
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(o.untilRow === undefined ? "raw session timed out" : `raw session timed out waiting for a row with "${o.untilRow}"`));
    }, o.timeoutMs ?? 10_000);
    socket.on("data", (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 5) {
        const len = pending.readInt32BE(1);
        if (pending.length < len + 1) break;
        const msg = pending.subarray(0, len + 1);
        pending = pending.subarray(len + 1);
        const type = String.fromCharCode(msg[0] ?? 0);
        if (!loggedIn) {
          if (type === "R" && msg.readInt32BE(5) === 3) socket.write(serialize.password(o.password));
          if (type === "E") {
            clearTimeout(timer);
            reject(new Error(msg.toString("latin1")));
          }
          if (type === "Z") {
            loggedIn = true;
            socket.write(o.bytes);
          }
          continue;
        }
        chunks.push(Buffer.from(msg));
        if (o.untilRow !== undefined && type === "D" && msg.toString("latin1").includes(o.untilRow)) sawRow = true;
        if (type === "Z" && (o.untilRow === undefined ? ++ready === want : sawRow)) {
          clearTimeout(timer);
          socket.end(serialize.end());
          resolve(Buffer.concat(chunks));
        }
      }
    });
    socket.write(serialize.startup({ user: "agent", database: o.database, ...o.startup }));
  });
}
