/**
 * The target's views and stored functions, read on a gateway side connection (the gateway's own
 * login, never the agent's session): the definitions src/policy/mysql/lineage.ts sees column
 * rules through. One look-up logs in, runs two queries over information_schema (VIEWS, and
 * ROUTINES of type FUNCTION) for the databases asked, and quits.
 *
 * Answers are kept TTL_MS per set of databases (views created outside the gateway are seen at
 * most that late) and dropped at once when a session changes views or routines (invalidate()).
 * A look-up that fails rejects: the caller fails closed. Bounded: at most MAX_OBJECTS rows, each
 * packet within the engine's payload limit, every wait within the connect timeout.
 */
import type { MysqlConnection } from "../../core/connection.js";
import { GatewayError } from "../../core/errors.js";
import type { MysqlObjects } from "../../policy/mysql/lineage.js";
import { connectTarget, type TargetOptions } from "./upstream.js";
import { CAP, COM, DEFAULT_CHARSET, decodeErr, decodeTextRow } from "./wire/protocol.js";
import { Cursor } from "./wire/packets.js";

const TTL_MS = 10_000;
/** Most views plus functions read per look-up; more: the look-up fails (closed). */
const MAX_OBJECTS = 20_000;

/** A literal for `s` that reads the same under every sql_mode (no quotes or backslashes to escape). */
function literal(s: string): string {
  return `CONVERT(X'${Buffer.from(s, "utf8").toString("hex")}' USING utf8mb4)`;
}

export class MysqlCatalog {
  readonly #connection: MysqlConnection;
  readonly #o: TargetOptions;
  readonly #cache = new Map<string, { at: number; objects: Promise<MysqlObjects> }>();
  #generation = 0;

  constructor(connection: MysqlConnection, o: TargetOptions) {
    this.#connection = connection;
    this.#o = o;
  }

  invalidate(): void {
    this.#generation++;
    this.#cache.clear();
  }

  objects(databases: readonly string[]): Promise<MysqlObjects> {
    const dbs = [...new Set(databases.map((d) => d.toLowerCase()))].sort();
    const key = dbs.join("\u0000");
    const hit = this.#cache.get(key);
    if (hit !== undefined && Date.now() - hit.at <= TTL_MS) return hit.objects;
    const generation = this.#generation;
    const objects = this.#load(dbs);
    const entry = { at: Date.now(), objects };
    this.#cache.set(key, entry);
    objects.catch(() => {
      if (this.#cache.get(key) === entry) this.#cache.delete(key);
    });
    void objects.then(() => {
      // Invalidated while loading: the answer may predate the change.
      if (generation !== this.#generation && this.#cache.get(key) === entry) this.#cache.delete(key);
    }, () => undefined);
    if (this.#cache.size > 64) this.#cache.delete(this.#cache.keys().next().value ?? key);
    return objects;
  }

  async #load(databases: readonly string[]): Promise<MysqlObjects> {
    const views = new Map<string, string | null>();
    const functions = new Map<string, string | null>();
    if (databases.length === 0) return { views, functions };
    const inList = databases.map(literal).join(", ");
    const link = await connectTarget(
      this.#connection,
      { capabilities: CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.LONG_PASSWORD | CAP.TRANSACTIONS, charset: DEFAULT_CHARSET, maxPacketSize: 1 << 24, attributes: new Map([["program_name", "airlock-catalog"]]) },
      this.#o,
    );
    try {
      const q = async (sql: string): Promise<(string | null)[][]> => {
        link.channel.write(Buffer.concat([Buffer.from([COM.QUERY]), Buffer.from(sql, "utf8")]), 0);
        return this.#rows(link.channel.next.bind(link.channel));
      };
      for (const [schema, name, def] of await q(`SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE LOWER(TABLE_SCHEMA) IN (${inList})`)) {
        // An empty definition: the gateway's account may not see it (SHOW VIEW).
        if (schema !== null && schema !== undefined && name !== null && name !== undefined) views.set(`${schema}.${name}`.toLowerCase(), def === "" || def === undefined ? null : def);
      }
      for (const [schema, name, body] of await q(
        `SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' AND LOWER(ROUTINE_SCHEMA) IN (${inList})`,
      )) {
        if (schema !== null && schema !== undefined && name !== null && name !== undefined) functions.set(`${schema}.${name}`.toLowerCase(), body === "" || body === undefined ? null : body);
      }
      link.channel.write(Buffer.from([COM.QUIT]), 0);
      return { views, functions };
    } finally {
      link.channel.socket.destroy();
    }
  }

  /** The rows of one text resultset (no CLIENT_DEPRECATE_EOF: EOF packets end definitions and rows). */
  async #rows(next: (timeoutMs?: number) => Promise<{ payload: Buffer } | undefined>): Promise<(string | null)[][]> {
    const read = async (): Promise<Buffer> => {
      const p = await next(this.#o.timeoutMs);
      if (p === undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target closed the catalog connection");
      return p.payload;
    };
    const first = await read();
    if (first[0] === 0xff) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the target's catalog query failed: ${decodeErr(first).message.slice(0, 200)}`);
    const count = new Cursor(first).lenencInt();
    if (count < 1 || count > 16) throw new GatewayError("GW_PROTOCOL", "unexpected catalog resultset");
    for (let i = 0; i < count; i++) await read();
    await read(); // EOF after the definitions
    const rows: (string | null)[][] = [];
    for (;;) {
      const p = await read();
      if (p[0] === 0xff) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the target's catalog query failed: ${decodeErr(p).message.slice(0, 200)}`);
      if (p[0] === 0xfe && p.length < 9) return rows;
      if (rows.length >= MAX_OBJECTS) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `more than ${MAX_OBJECTS} views or functions in the catalog`);
      rows.push(decodeTextRow(p, count).map((s) => (s === null ? null : p.toString("utf8", s.start, s.end))));
    }
  }
}
