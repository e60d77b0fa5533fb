/**
 * A gateway-owned session to a MySQL/MariaDB target (previews of held writes, EXPLAIN estimates):
 * logged in with the connection's credential (upstream.ts), text protocol only, one query at a
 * time. It is opened on first use; a timeout, a protocol error or a closed socket drops it and
 * the next piece of work opens a new one. Multi-statements are never negotiated: one query text
 * is one statement (Protocol::COM_QUERY, Text Resultset).
 */
import type { MysqlConnection } from "../../core/connection.js";
import { GatewayError } from "../../core/errors.js";
import { connectTarget, type TargetLink, type TargetOptions } from "./upstream.js";
import { Cursor } from "./wire/packets.js";
import { CAP, COM, DEFAULT_CHARSET, decodeColumnDefinition, decodeErr, decodeOk, decodeTextRow, isRowsTerminator } from "./wire/protocol.js";

/** What one query answered: its columns and rows (text), or its OK, or the target's error (number and SQLSTATE only). */
export interface SideResult {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
  /** Rows read beyond `keepRows` (counted, not kept). */
  readonly rowCount: number;
  readonly affectedRows: number;
  readonly error?: { readonly code: number; readonly sqlstate: string };
}

const SIDE_CAPS = (CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.LONG_PASSWORD | CAP.TRANSACTIONS) >>> 0;
/** The longest one answer may take before the side session is dropped. */
const ANSWER_TIMEOUT_MS = 15_000;

export class MysqlSideSession {
  readonly #conn: MysqlConnection;
  readonly #o: TargetOptions;
  readonly #program: string;
  #link: Promise<TargetLink> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(conn: MysqlConnection, o: TargetOptions, program: string) {
    this.#conn = conn;
    this.#o = o;
    this.#program = program;
  }

  /** Run `work` alone on the side session; a failure other than the target's own refusal drops the session. */
  run<T>(work: (query: (sql: string, keepRows?: number) => Promise<SideResult>) => Promise<T>): Promise<T> {
    const next = this.#queue.then(async () => {
      if (this.#closed) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the gateway is shutting down");
      const link = await this.#open();
      try {
        return await work((sql, keep) => this.#query(link, sql, keep ?? 1_000));
      } catch (e) {
        this.#drop(link);
        throw e;
      }
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #open(): Promise<TargetLink> {
    if (this.#link === undefined) {
      const p = connectTarget(this.#conn, { capabilities: SIDE_CAPS, charset: DEFAULT_CHARSET, maxPacketSize: 1 << 24, attributes: new Map([["program_name", this.#program]]) }, this.#o);
      this.#link = p;
      p.then(
        (l) => l.channel.socket.once("close", () => this.#link === p && (this.#link = undefined)),
        () => this.#link === p && (this.#link = undefined),
      );
    }
    return this.#link;
  }

  #drop(link: TargetLink): void {
    link.channel.socket.destroy();
    this.#link = undefined;
  }

  async #query(link: TargetLink, sql: string, keepRows: number): Promise<SideResult> {
    const ch = link.channel;
    ch.write(Buffer.concat([Buffer.from([COM.QUERY]), Buffer.from(sql, "utf8")]), 0);
    const next = async (): Promise<Buffer> => {
      const p = await ch.next(ANSWER_TIMEOUT_MS);
      if (p === undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target closed the gateway's side connection");
      return p.payload;
    };
    const first = await next();
    if (first[0] === 0xff) {
      const e = decodeErr(first);
      return { columns: [], rows: [], rowCount: 0, affectedRows: 0, error: { code: e.code, sqlstate: e.sqlstate } };
    }
    if (first[0] === 0x00) return { columns: [], rows: [], rowCount: 0, affectedRows: decodeOk(first, link.capabilities).affectedRows };
    const n = new Cursor(first).lenencInt();
    if (n > 4096) throw new GatewayError("GW_PROTOCOL", "a resultset with more than 4096 columns");
    const columns: string[] = [];
    for (let i = 0; i < n; i++) columns.push(decodeColumnDefinition(await next()).name);
    await next(); // EOF (CLIENT_DEPRECATE_EOF is not negotiated here)
    const rows: (string | null)[][] = [];
    let rowCount = 0;
    for (;;) {
      const p = await next();
      if (p[0] === 0xff) {
        const e = decodeErr(p);
        return { columns, rows, rowCount, affectedRows: 0, error: { code: e.code, sqlstate: e.sqlstate } };
      }
      if (isRowsTerminator(p, false)) return { columns, rows, rowCount, affectedRows: 0 };
      rowCount++;
      if (rows.length < keepRows) rows.push(decodeTextRow(p, n).map((s) => (s === null ? null : p.toString("utf8", s.start, s.end))));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const l = this.#link;
    this.#link = undefined;
    if (l !== undefined) await l.then((x) => x.channel.socket.destroy()).catch(() => undefined);
  }
}
