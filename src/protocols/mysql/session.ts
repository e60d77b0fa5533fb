/**
 * One admitted MySQL session. The protocol is strictly request/response, so commands are
 * served one at a time: read a command, judge it, forward it, relay the target's whole answer
 * (masked by the command's plan), then read the next. Every answer is paired with the command
 * that produced it by construction; a resultset of a multi-statement query belongs to that query.
 *
 * - COM_QUERY: the text is judged as one `db.query` (stage simple; a multi-statement text is
 *   classified as several statements: one denied denies the packet).
 * - COM_STMT_PREPARE: judged at prepare (stage prepare); the statement id comes from the
 *   target's COM_STMT_PREPARE_OK and is tracked with its plan; executions of a statement whose
 *   verdict was a hold are judged one by one with their values (`db.execute`), and so are those
 *   of a statement with `?` under a cost rule (a cost deferral: each execution is decided on
 *   EXPLAIN with its values, on the previewer's side session, before it reaches the target).
 * - COM_STMT_EXECUTE / SEND_LONG_DATA / CLOSE / RESET: only for tracked statement ids; a
 *   cursor (COM_STMT_FETCH) is refused.
 * - COM_INIT_DB to another database, COM_CHANGE_USER, COM_BINLOG_DUMP*, replication and the
 *   old administrative commands (CREATE_DB, DROP_DB, REFRESH, SHUTDOWN, PROCESS_KILL, …) are
 *   judged as protocol requests and refused: they would switch the connection or identity, or
 *   act without a statement the guardrails read.
 * - LOAD DATA LOCAL INFILE: CLIENT_LOCAL_FILES is never negotiated; a target that asks for a
 *   file anyway gets an empty one and the client an ERR.
 * Limits: maxRows cuts a resultset (the client gets the first rows and a normal end; the rest
 * is stopped with KILL QUERY on a side connection and discarded); statementTimeout kills the
 * statement and the client gets `airlock: …`; readOnly starts the target session with
 * `SET SESSION TRANSACTION READ ONLY` and refuses statements that would undo it.
 * Warnings: the gateway's own (a budget near its end, `annotate` findings) are added to the
 * warning count of the statement's terminator and listed after the target's by the next
 * SHOW WARNINGS (Level Warning, Code 1105, `airlock: …`); SHOW COUNT(*) WARNINGS and
 * SELECT @@warning_count count them too.
 */
import type { Logger } from "pino";
import type { MysqlConnection } from "../../core/connection.js";
import type { AllowDecision, DenyDecision, DerivedRelation, MaskRule, ResultPlan, SourceColumn } from "../../core/decision.js";
import type { DeferredHold } from "../../core/events.js";
import { gatewayText } from "../../core/engine.js";
import { GatewayError, type ErrorCode } from "../../core/errors.js";
import type { SessionJudge } from "../../core/judge.js";
import type { ResultWatch, WatchedValue } from "../../core/result-watch.js";
import type { SessionEndReason } from "../../core/session.js";
import { DEFAULT_LEX_MODE, lexMysql, type LexMode } from "../../policy/mysql/index.js";
import { MaskChain, rulesForField, type RuleMasker } from "../../masking/index.js";
import type { PacketChannel } from "./channel.js";
import { boundLiteral, type MysqlPreviewer } from "./preview.js";
import { errOf, renderRefusal } from "./errors.js";
import { Cursor, type Packet, type PacketLimits } from "./wire/packets.js";
import {
  BINARY_CHARSET,
  CAP,
  COM,
  STATUS,
  TYPE,
  addTerminatorWarnings,
  binaryValueText,
  decodeBinaryRow,
  decodeColumnDefinition,
  decodeErr,
  decodeOk,
  decodePrepareOk,
  decodeStmtExecute,
  decodeTextRow,
  encodeBinaryRow,
  encodeEof,
  encodeErr,
  encodeOk,
  encodeTextRow,
  hasCap,
  isBinaryStringType,
  isRowsTerminator,
  terminatorStatus,
  type BinaryValue,
  type ColumnDefinition,
} from "./wire/protocol.js";

export interface MysqlSessionOptions {
  readonly gate: SessionJudge;
  readonly connection: MysqlConnection;
  readonly client: PacketChannel;
  readonly target: PacketChannel;
  /** The target's connection id (for KILL QUERY). */
  readonly targetId: number;
  /** Capabilities in force with the client (the same formats on the target leg). */
  readonly capabilities: number;
  readonly limits: PacketLimits;
  readonly maskerFor: (rule: MaskRule) => RuleMasker;
  readonly maxRowsPerStatement: number;
  readonly maxValueBytes: number;
  readonly logger: Logger;
  /** Stop the running statement on the target (a side connection's KILL QUERY). */
  readonly killQuery: () => Promise<boolean>;
  /** Previews of held writes and planner estimates on a gateway-owned session (absent: none). */
  readonly previewer?: MysqlPreviewer;
}

interface Statement {
  readonly id: number;
  readonly sql: string;
  readonly seq: number;
  readonly params: number;
  readonly plan: ResultPlan | undefined;
  readonly deferred: DeferredHold | undefined;
  paramTypes: readonly { readonly type: number; readonly flags: number }[] | undefined;
  readonly longData: Set<number>;
}

/** What a forwarded command's answer looks like. */
type Answer = "generic" | "resultset" | "fields" | "one";

/** How one command's results are treated and recorded. */
interface Work {
  readonly seq: number;
  readonly kind: "simple" | "execute";
  /** The statement text, when known (column masks of a UNION, see #columnMasks). */
  readonly sql?: string;
  readonly plan: ResultPlan | undefined;
  readonly binary: boolean;
  readonly started: number;
  readonly params?: readonly (string | null)[];
  timedOut?: { readonly message: string };
  /**
   * A diagnostic statement (SHOW WARNINGS, SHOW COUNT(*) WARNINGS, SELECT @@warning_count)
   * answered with the gateway's warnings added to the target's.
   */
  readonly diagnostic?: { readonly kind: Diagnostic; readonly warnings: readonly string[] };
}

/** How a diagnostic statement's answer carries the gateway's warnings: more rows, or a bigger count. */
type Diagnostic = "list" | "count";

/**
 * The diagnostic statements that read the warnings of the previous statement and keep them
 * (they do not start a new diagnostics area), in their plain forms: the gateway adds its own
 * there. Other forms (LIMIT, comments) are forwarded as they are and show the target's only.
 */
const DIAGNOSTICS: readonly (readonly [RegExp, Diagnostic])[] = [
  [/^\s*show\s+warnings\s*;?\s*$/i, "list"],
  [/^\s*show\s+count\s*\(\s*\*\s*\)\s+warnings\s*;?\s*$/i, "count"],
  [/^\s*select\s+@@(?:session\.)?warning_count\s*;?\s*$/i, "count"],
];

function diagnosticOf(sql: string): Diagnostic | undefined {
  return DIAGNOSTICS.find(([re]) => re.test(sql))?.[1];
}

/** The gateway's warnings kept for one statement (budget near its end, annotate findings); more are dropped. */
const MAX_GATEWAY_WARNINGS = 64;
/** The code of the gateway's warnings in SHOW WARNINGS: ER_UNKNOWN_ERROR, as MariaDB uses for messages of its own kind. */
export const GATEWAY_WARNING_CODE = 1105;

/** Statements that would undo the read-only limit (crude on purpose: a false match only refuses). */
const READ_WRITE = /\bread\s+write\b|\btx_read_only\b|\btransaction_read_only\b|\bread_only\b/i;
/** `USE db` as a statement of a query text (switching database = switching connection), read in its lexical skeleton. */
const USE_STATEMENT = /(^|;)\s*use(?![\w$])/i;
const LEX_MODES: readonly LexMode[] = [
  DEFAULT_LEX_MODE,
  { ansiQuotes: true, noBackslashEscapes: false },
  { ansiQuotes: false, noBackslashEscapes: true },
  { ansiQuotes: true, noBackslashEscapes: true },
];

/** Whether a query text is one SHOW, DESCRIBE or EXPLAIN statement (metadata, not rows), under every sql_mode. */
function isMetadataStatement(sql: string): boolean {
  return LEX_MODES.every((mode) => {
    const r = lexMysql(sql, mode);
    return r.ok && !r.skeleton.includes(";") && /^\s*(show|desc|describe|explain)\s/i.test(r.skeleton) && !/\bselect\b/i.test(r.skeleton);
  });
}

/** Whether a query text has a UNION (or INTERSECT / EXCEPT) outside its literals and comments, under any sql_mode. */
function hasUnion(sql: string): boolean {
  return LEX_MODES.some((mode) => {
    const r = lexMysql(sql, mode);
    return /\b(union|intersect|except)\b/i.test(r.ok ? r.skeleton : sql);
  });
}

/**
 * Whether a query text has a USE statement, as the server reads it under any sql_mode: comments
 * blanked, executable comments (`/*!40000 USE x *\/`) opened, literals emptied (a string that
 * says `; use x` is not one). A text the lexer cannot read is matched on its raw words.
 */
function hasUseStatement(sql: string): boolean {
  for (const mode of LEX_MODES) {
    const r = lexMysql(sql, mode);
    if (r.ok ? USE_STATEMENT.test(r.skeleton) : /(^|[;\s/*!])use(?![\w$])/i.test(sql)) return true;
  }
  return false;
}

export class MysqlSession {
  readonly #o: MysqlSessionOptions;
  readonly #log: Logger;
  readonly #statements = new Map<number, Statement>();
  readonly #deprecateEof: boolean;
  #seq = 0;
  #ended = false;
  #endReason: SessionEndReason = "client_closed";
  #endDetail: string | undefined;
  #status: number = STATUS.AUTOCOMMIT;
  #killing: Promise<unknown> | undefined;
  /** A command was read and its answer is not complete yet. */
  #busy = false;
  /** The session's setup statements (read-only), run again after COM_RESET_CONNECTION. */
  readonly #setup: string[] = [];
  /**
   * The gateway's warnings of the last statement (budget near its end, annotate findings):
   * counted in its terminator's warning count and listed by the next SHOW WARNINGS; cleared when
   * a statement that is not a diagnostic starts (as the server clears its own).
   */
  #warnings: string[] = [];

  constructor(o: MysqlSessionOptions) {
    this.#o = o;
    this.#log = o.logger.child({ sessionId: o.gate.info.id });
    this.#deprecateEof = hasCap(o.capabilities, CAP.DEPRECATE_EOF);
    o.client.reader.setLimits(o.limits);
    if (o.gate.settings["default_transaction_read_only"] === "on") this.#setup.push("SET SESSION TRANSACTION READ ONLY");
  }

  get #readOnly(): boolean {
    return this.#setup.length > 0;
  }

  /** Run the setup statements on the target; a refusal when one fails. */
  async prepare(): Promise<DenyDecision | undefined> {
    for (const sql of this.#setup) {
      this.#o.target.write(Buffer.concat([Buffer.from([COM.QUERY]), Buffer.from(sql, "utf8")]), 0);
      const p = await this.#o.target.next(30_000);
      if (p === undefined || p.payload[0] !== 0x00) {
        const why = p === undefined ? "the target closed the connection" : p.payload[0] === 0xff ? decodeErr(p.payload).message.slice(0, 200) : "unexpected answer";
        return { type: "deny", code: "GW_UPSTREAM_UNAVAILABLE", message: `could not set up the target session (${sql}): ${why}` };
      }
      this.#status = decodeOk(p.payload, this.#o.capabilities).status;
    }
    return undefined;
  }

  async run(): Promise<void> {
    const { client, target, gate } = this.#o;
    const onAbort = (): void => {
      const t = gate.termination;
      this.#endReason = t?.reason ?? "terminated";
      this.#endDetail = t?.detail;
      if (this.#busy && !this.#ended) {
        // A client waiting for an answer reads why as its answer (MariaDB's own "connection was
        // killed" code, mid-resultset too), and the statement stops on the target: closing the
        // target connection alone would leave it running (MariaDB notices a gone client late).
        this.#o.client.write(renderRefusal({ type: "deny", code: "GW_SESSION_TERMINATED", message: `session ended: ${t?.detail ?? "terminated"}` }), this.#o.client.nextSeq);
        void this.#o.killQuery().catch(() => undefined);
      }
      this.#finish(this.#endReason);
    };
    if (gate.signal.aborted) onAbort();
    else gate.signal.addEventListener("abort", onAbort, { once: true });
    target.socket.once("close", () => this.#finish("upstream_closed"));
    try {
      for (;;) {
        if (this.#ended) break;
        const p = await client.next(undefined, gate.signal).catch((e: unknown) => {
          if (e instanceof GatewayError && e.code !== "GW_SESSION_TERMINATED") {
            // A malformed or oversize packet: tell the client, then close (as the server does).
            client.write(renderRefusal(e), 1);
            this.#finish("error", e.message);
          }
          return undefined;
        });
        if (p === undefined) break;
        if (this.#killing !== undefined) await this.#killing;
        // The answer to a command starts at sequence id 1.
        client.nextSeq = 1;
        this.#busy = true;
        await this.#command(p);
        this.#busy = false;
      }
    } catch (e) {
      const code = e instanceof GatewayError ? e.code : "GW_INTERNAL";
      if (code === "GW_INTERNAL") this.#log.error({ err: e }, "unexpected error serving a MySQL command");
      else this.#log.debug({ err: e }, "MySQL session ended on an error");
      this.#finish("error", e instanceof GatewayError ? e.message : "internal error");
    } finally {
      gate.signal.removeEventListener("abort", onAbort);
      this.#finish(this.#endReason);
      await gate.end(this.#endReason, { statements: this.#seq, bytesFromClient: client.bytesIn, bytesToClient: client.bytesOut }, this.#endDetail);
    }
  }

  #finish(reason: SessionEndReason, detail?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#endReason === "client_closed") this.#endReason = reason;
    if (detail !== undefined) this.#endDetail ??= detail;
    this.#o.client.socket.end();
    this.#o.target.socket.destroy();
    setImmediate(() => this.#o.client.socket.destroy());
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  /** Answer the client with an ERR (sequence 1: the reply to its command). */
  #refuse(r: DenyDecision | GatewayError): void {
    this.#o.client.write(renderRefusal(r), 1);
  }

  /** Judge a protocol request the gateway never forwards, and refuse it. */
  async #refuseFeature(feature: string, detail: string, code: ErrorCode, reason: string): Promise<void> {
    const gate = this.#o.gate;
    const d = await gate.judge({ type: "protocol.request", session: gate.info, seq: ++this.#seq, feature, detail, violation: { code, reason } });
    this.#refuse(d.type === "deny" ? { ...d, code, message: reason } : { type: "deny", code, message: reason, rule: "protocol" });
  }

  async #command(p: Packet): Promise<unknown> {
    const payload = p.payload;
    const cmd = payload[0] ?? -1;
    switch (cmd) {
      case COM.QUIT:
        this.#finish("client_closed");
        return;
      case COM.QUERY:
        return this.#query(payload);
      case COM.STMT_PREPARE:
        return this.#prepareStatement(payload);
      case COM.STMT_EXECUTE:
        return this.#execute(payload);
      case COM.STMT_SEND_LONG_DATA: {
        const st = payload.length >= 7 ? this.#statements.get(payload.readUInt32LE(1)) : undefined;
        // No answer exists for this command: an unknown statement's data is dropped (the
        // target would ignore it too) and its execution fails.
        if (st === undefined) return;
        st.longData.add(payload.readUInt16LE(5));
        this.#forward(payload);
        return;
      }
      case COM.STMT_CLOSE: {
        const id = payload.length >= 5 ? payload.readUInt32LE(1) : -1;
        if (!this.#statements.delete(id)) return;
        this.#forward(payload);
        return;
      }
      case COM.STMT_RESET: {
        const st = payload.length >= 5 ? this.#statements.get(payload.readUInt32LE(1)) : undefined;
        if (st === undefined) return this.#refuse(new GatewayError("GW_PROTOCOL", "unknown prepared statement"));
        st.longData.clear();
        return this.#relay(payload, "generic", undefined);
      }
      case COM.INIT_DB: {
        const db = payload.subarray(1).toString("utf8");
        // The connection's own database, by its name on the target or the connection's name.
        if (db === this.#o.connection.name && db !== this.#o.connection.database) {
          return this.#relay(Buffer.concat([Buffer.from([COM.INIT_DB]), Buffer.from(this.#o.connection.database, "utf8")]), "generic", undefined);
        }
        if (db !== this.#o.connection.database) {
          return this.#refuseFeature(
            "mysql.init_db",
            `COM_INIT_DB ${db.slice(0, 64)}`,
            "GW_POLICY_DENIED",
            `connection "${this.#o.connection.name}" is database ${this.#o.connection.database}; another database is another connection`,
          );
        }
        return this.#relay(payload, "generic", undefined);
      }
      case COM.PING:
      case COM.SET_OPTION:
        return this.#relay(payload, "generic", undefined);
      case COM.STATISTICS:
        return this.#relay(payload, "one", undefined);
      case COM.FIELD_LIST:
        return this.#relay(payload, "fields", undefined);
      case COM.RESET_CONNECTION: {
        const ok = await this.#relay(payload, "generic", undefined);
        if (ok) {
          this.#statements.clear();
          const failed = await this.prepare();
          if (failed !== undefined) this.#finish("error", failed.message);
        }
        return;
      }
      case COM.CHANGE_USER:
        return this.#refuseFeature("mysql.change_user", "COM_CHANGE_USER", "GW_UNSUPPORTED", "COM_CHANGE_USER is not served: the session is bound to its identity and connection; open a new connection");
      case COM.BINLOG_DUMP:
      case COM.BINLOG_DUMP_GTID:
      case COM.REGISTER_SLAVE:
      case COM.TABLE_DUMP:
        return this.#refuseFeature("mysql.replication", "replication command", "GW_UNSUPPORTED", "replication (binlog) streams are not served through the gateway");
      case COM.STMT_FETCH:
        return this.#refuseFeature("mysql.cursor", "COM_STMT_FETCH", "GW_UNSUPPORTED", "server-side cursors are not served through the gateway");
      default:
        return this.#refuseFeature(
          "mysql.command",
          `command 0x${cmd.toString(16).padStart(2, "0")}`,
          "GW_UNSUPPORTED",
          `command 0x${cmd.toString(16).padStart(2, "0")} is not served through the gateway`,
        );
    }
  }

  /** Engine-side refusals that keep the session bound to its connection and limits. */
  async #guard(sql: string): Promise<boolean> {
    if (hasUseStatement(sql)) {
      await this.#refuseFeature("mysql.use", "USE", "GW_POLICY_DENIED", `connection "${this.#o.connection.name}" is database ${this.#o.connection.database}; another database is another connection (USE is not served)`);
      return false;
    }
    if (this.#readOnly && READ_WRITE.test(sql)) {
      await this.#refuseFeature("mysql.read_only", "read-write change", "GW_POLICY_DENIED", "this session is read-only (policy readOnly); it cannot be made read-write");
      return false;
    }
    return true;
  }

  async #query(payload: Buffer): Promise<void> {
    const sql = payload.subarray(1).toString("utf8");
    const diagnostic = diagnosticOf(sql);
    if (diagnostic === undefined) this.#warnings = [];
    const warnings = this.#warnings;
    if (!(await this.#guard(sql))) return;
    const gate = this.#o.gate;
    const seq = ++this.#seq;
    const previewer = this.#o.previewer;
    const d = await gate.judge(
      { type: "db.query", session: gate.info, seq, stage: "simple", sql, ...(previewer === undefined ? {} : { estimate: () => previewer.estimate(sql) }) },
      { signal: gate.signal, ...(previewer === undefined ? {} : { preview: (stmt) => previewer.preview(stmt) }) },
    );
    if (d.type === "deny") return this.#refuse(d);
    await this.#relay(payload, "resultset", {
      seq,
      kind: "simple",
      sql,
      plan: d.plan,
      binary: false,
      started: Date.now(),
      ...(diagnostic === undefined || warnings.length === 0 ? {} : { diagnostic: { kind: diagnostic, warnings } }),
    });
  }

  async #prepareStatement(payload: Buffer): Promise<void> {
    const sql = payload.subarray(1).toString("utf8");
    this.#warnings = [];
    if (!(await this.#guard(sql))) return;
    const gate = this.#o.gate;
    const seq = ++this.#seq;
    const previewer = this.#o.previewer;
    // A cost rule on a text with `?` is judged at each COM_STMT_EXECUTE, with its values (a
    // cost deferral): `?` anywhere (in a literal or comment too) is an over-approximation, which
    // only moves the estimate to the execution. Without `?` it is judged now.
    const parameterized = sql.includes("?");
    const d: AllowDecision | DenyDecision = await gate.judge(
      {
        type: "db.query",
        session: gate.info,
        seq,
        stage: "prepare",
        sql,
        statementName: "",
        ...(previewer === undefined ? {} : { estimate: () => previewer.estimate(sql) }),
        ...(parameterized ? { parameterized } : {}),
      },
      { signal: gate.signal },
    );
    if (d.type === "deny") return this.#refuse(d);
    this.#o.target.write(payload, 0);
    const first = await this.#targetNext();
    if (first.payload[0] !== 0x00) {
      this.#forwardErr(first, undefined);
      return;
    }
    const ok = decodePrepareOk(first.payload);
    let out = 1;
    out = this.#o.client.write(first.payload, out);
    // Parameter definitions, then column definitions, each list followed by an EOF unless CLIENT_DEPRECATE_EOF.
    for (const n of [ok.params, ok.columns]) {
      if (n === 0) continue;
      for (let i = 0; i < n + (this.#deprecateEof ? 0 : 1); i++) out = this.#o.client.write((await this.#targetNext()).payload, out);
    }
    this.#statements.set(ok.statementId, { id: ok.statementId, sql, seq, params: ok.params, plan: d.plan, deferred: d.deferred, paramTypes: undefined, longData: new Set() });
  }

  async #execute(payload: Buffer): Promise<void> {
    const id = payload.length >= 5 ? payload.readUInt32LE(1) : -1;
    const st = this.#statements.get(id);
    this.#warnings = [];
    if (st === undefined) return this.#refuse(new GatewayError("GW_PROTOCOL", `unknown prepared statement handler (${id}) given to EXECUTE`));
    if ((payload[5] ?? 0) !== 0) return this.#refuseFeature("mysql.cursor", "COM_STMT_EXECUTE with a cursor", "GW_UNSUPPORTED", "server-side cursors are not served through the gateway");
    let exec;
    try {
      exec = decodeStmtExecute(payload, st.params, st.paramTypes, st.longData);
    } catch (e) {
      return this.#refuse(e instanceof GatewayError ? e : new GatewayError("GW_PROTOCOL", "malformed COM_STMT_EXECUTE"));
    }
    st.paramTypes = exec.types;
    const shown = exec.values.map((v, i) => (v === null ? null : st.longData.has(i) ? "<long data>" : binaryValueText(payload, exec.types[i]?.type ?? TYPE.NULL, exec.types[i]?.flags ?? 0, v).slice(0, 256)));
    let plan = st.plan;
    let seq = st.seq;
    if (st.deferred !== undefined) {
      if (st.longData.size > 0) {
        const why =
          st.deferred.hold.type === "defer"
            ? `rule ${st.deferred.hold.rule} judges the planner's estimate of each execution with its values, which must be sent with the execution (not as long data) to be estimated, so it is refused (fail closed)`
            : "a held statement's values must be sent with the execution (not as long data) to be approved";
        return this.#refuse({ type: "deny", code: "GW_POLICY_DENIED", message: why, rule: st.deferred.hold.rule });
      }
      const gate = this.#o.gate;
      seq = ++this.#seq;
      const previewer = this.#o.previewer;
      // The preview runs with these values, whole (`shown` is clipped for the record).
      const literals = exec.values.map((v, i) => boundLiteral(payload, exec.types[i]?.type ?? TYPE.NULL, exec.types[i]?.flags ?? 0, v));
      const d = await gate.judge(
        {
          type: "db.execute",
          session: gate.info,
          seq,
          deferred: st.deferred,
          params: { shown, values: exec.values.map((v) => (v === null ? null : payload.subarray(v.start, v.end))), formats: [], types: exec.types.map((t) => t.type) },
          // A cost deferral asks for this execution's estimate: EXPLAIN with these values on the
          // gateway's side session (asked only then); the verdict lands before the execute is sent.
          ...(previewer === undefined ? {} : { estimate: () => previewer.estimate(st.sql, literals) }),
        },
        { signal: gate.signal, ...(previewer === undefined ? {} : { preview: (stmt) => previewer.preview(stmt, literals) }) },
      );
      if (d.type === "deny") return this.#refuse(d);
      plan = d.plan;
    }
    st.longData.clear();
    await this.#relay(payload, "resultset", { seq, kind: "execute", sql: st.sql, plan, binary: true, started: Date.now(), params: shown });
  }

  #forward(payload: Buffer): void {
    this.#o.target.write(payload, 0);
  }

  async #targetNext(): Promise<Packet> {
    const p = await this.#o.target.next();
    if (p === undefined) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the target closed the connection");
    return p;
  }

  // -------------------------------------------------------------------------------------------
  // Answers

  /** Forward a command and relay its answer; true when it ended in OK. */
  async #relay(payload: Buffer, answer: Answer, work: Work | undefined): Promise<boolean> {
    const timer = work === undefined ? undefined : this.#startTimer(work);
    try {
      return await this.#answer(payload, answer, work);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async #answer(payload: Buffer, answer: Answer, work: Work | undefined): Promise<boolean> {
    this.#o.target.write(payload, 0);
    {
      switch (answer) {
        case "one": {
          const p = await this.#targetNext();
          this.#o.client.write(p.payload, 1);
          return true;
        }
        case "generic": {
          const p = await this.#targetNext();
          if (p.payload[0] === 0xff) {
            this.#forwardErr(p, undefined);
            return false;
          }
          if (p.payload[0] === 0x00) this.#status = decodeOk(p.payload, this.#o.capabilities).status;
          this.#o.client.write(p.payload, 1);
          return p.payload[0] === 0x00 || p.payload[0] === 0xfe;
        }
        case "fields": {
          let out = 1;
          for (;;) {
            const p = await this.#targetNext();
            if (p.payload[0] === 0xff) {
              this.#forwardErr(p, undefined, out);
              return false;
            }
            out = this.#o.client.write(p.payload, out);
            if (isRowsTerminator(p.payload, this.#deprecateEof)) return true;
          }
        }
        case "resultset":
          return await this.#resultsets(work ?? { seq: this.#seq, kind: "simple", plan: undefined, binary: false, started: Date.now() });
      }
    }
  }

  #startTimer(work: Work): NodeJS.Timeout | undefined {
    const limit = this.#o.gate.statementTimeout;
    if (limit === undefined) return undefined;
    return setTimeout(() => {
      work.timedOut = { message: gatewayText(`the statement ran longer than ${limit.ms} ms and was stopped (rule: ${limit.rule})`) };
      this.#kill();
    }, limit.ms);
  }

  #kill(): void {
    if (this.#killing !== undefined) return;
    this.#killing = this.#o.killQuery().finally(() => (this.#killing = undefined));
  }

  /** The masking chains of a resultset's columns (undefined: nothing to mask). */
  #columnMasks(plan: ResultPlan | undefined, cols: readonly ColumnDefinition[], sql: string | undefined): (ColumnMask | undefined)[] | undefined {
    const rules = plan?.masks ?? [];
    if (rules.length === 0) return undefined;
    // The statement reads a column a column rule covers (ResultPlan.redactEchoes), and MySQL
    // gives no lineage: a field without a column origin (an expression, a subquery, a stored
    // function) may carry that value, and so may every field of a UNION (its definitions name
    // only the first branch's columns). Such fields are masked whole by the rule (over-masking
    // rather than a leak); plain columns keep their precise origin.
    // (SHOW, DESCRIBE and EXPLAIN answer with metadata, never row values: mariadb-dump's SHOW
    // CREATE TABLE of a table with a covered column must come through.)
    const covering = plan?.redactEchoes === true && (sql === undefined || !isMetadataStatement(sql)) ? rules.find((r) => r.columns.length > 0) : undefined;
    const union = covering !== undefined && sql !== undefined && hasUnion(sql);
    // A field whose origin is a derived table, CTE or view (MariaDB names those, not their base
    // tables) carries the base columns behind that column (src/policy/mysql/lineage.ts).
    const derived = (plan?.lineage ?? []).flatMap((l) => l?.derived ?? []);
    const out = cols.map((c): ColumnMask | undefined => {
      const origin = c.orgTable !== "" && c.orgName !== "";
      if (covering !== undefined && (!origin || union)) return { whole: this.#o.maskerFor(covering) };
      const from = origin ? derivedSources(derived, c.schema, c.orgTable, c.orgName) : undefined;
      const field = origin ? { name: c.name, relation: { schema: c.schema, name: c.orgTable }, column: c.orgName, ...(from === undefined ? {} : { derivedFrom: from }) } : { name: c.name };
      const r = rulesForField(field, rules);
      switch (r.kind) {
        case "keep":
          return undefined;
        case "whole":
          return { whole: this.#o.maskerFor(r.rule) };
        case "detect":
          return { chain: new MaskChain(r.rules.map((x) => this.#o.maskerFor(x))) };
      }
    });
    return out.some((m) => m !== undefined) ? out : undefined;
  }

  #errorChain(plan: ResultPlan | undefined): MaskChain | undefined {
    const rules = (plan?.masks ?? []).filter((r) => r.detectors.length > 0);
    return rules.length === 0 ? undefined : new MaskChain(rules.map((r) => this.#o.maskerFor(r)));
  }

  /** Forward an ERR from the target, its message through the detectors. */
  #forwardErr(p: Packet, work: Work | undefined, seq = 1, counts: Record<string, number> = {}): { sqlstate: string; message: string } {
    const err = decodeErr(p.payload);
    let message = err.message;
    if (work?.timedOut !== undefined) message = work.timedOut.message;
    else {
      const chain = this.#errorChain(work?.plan);
      const masked = chain?.text(message, counts);
      if (masked !== undefined) message = masked ?? "[REDACTED]";
    }
    const code = work?.timedOut !== undefined ? 3024 : err.code;
    this.#o.client.write(message === err.message ? p.payload : encodeErr({ code, sqlstate: err.sqlstate, message }), seq);
    return { sqlstate: err.sqlstate, message };
  }

  /** The terminator the gateway writes when it ends a resultset itself. */
  #terminator(status: number, warnings: number): Buffer {
    return this.#deprecateEof ? encodeOk({ affectedRows: 0, lastInsertId: 0, status, warnings }, 0xfe) : encodeEof({ warnings, status });
  }

  /** How many warnings of its own the gateway adds to this statement's terminator (none to a diagnostic's). */
  #addedWarnings(work: Work): number {
    return work.diagnostic === undefined ? this.#warnings.length : 0;
  }

  /** Keep a warning of the gateway for the statement's terminator and the next SHOW WARNINGS. */
  #warn(seq: number, notice: string): void {
    this.#log.info({ seq, notice }, "result notice (a MySQL warning)");
    if (this.#warnings.length < MAX_GATEWAY_WARNINGS && !this.#warnings.includes(notice)) this.#warnings.push(notice);
  }

  /** Relay every resultset of one command (multi-statements, CALL), each recorded; true when it ended in OK. */
  async #resultsets(work: Work): Promise<boolean> {
    const client = this.#o.client;
    let out = 1;
    /** Rows cut by maxRows: everything after the cut is discarded until the command's answer ends. */
    let cut = false;
    /** A result guard stopped the answer (budget spent, session ended): the client got this as an ERR. */
    let stopped: DenyDecision | undefined;
    for (;;) {
      const first = await this.#targetNext();
      const head = first.payload[0];
      if (head === 0x00) {
        const ok = decodeOk(first.payload, this.#o.capabilities);
        this.#status = ok.status;
        if (!cut) out = client.write(first.payload, out);
        this.#observe(work, { rowCount: ok.affectedRows, commandTag: "OK" });
        if ((ok.status & STATUS.MORE_RESULTS_EXISTS) === 0) return true;
        continue;
      }
      if (head === 0xff) {
        if (cut) {
          // The KILL QUERY that stopped the cut statement: the client already has its end.
          return true;
        }
        const counts: Record<string, number> = {};
        const error = this.#forwardErr(first, work, out, counts);
        this.#observe(work, { rowCount: 0, error, masked: counts });
        return false;
      }
      if (head === 0xfb) {
        // LOCAL INFILE request: never negotiated; send an empty file, swallow the answer.
        this.#o.target.write(Buffer.alloc(0), (first.lastSeq + 1) & 0xff);
        await this.#targetNext();
        const refusal: DenyDecision = { type: "deny", code: "GW_UNSUPPORTED", message: "LOAD DATA LOCAL INFILE is not served through the gateway", rule: "protocol" };
        client.write(encodeErr(errOf(refusal)), out);
        this.#observe(work, { rowCount: 0, error: { sqlstate: "42000", message: refusal.message } });
        return false;
      }
      // A resultset: column count, definitions, [EOF], rows, terminator.
      const columnCount = new Cursor(first.payload).lenencInt();
      if (columnCount > 4096) throw new GatewayError("GW_PROTOCOL", "a resultset with more than 4096 columns");
      if (!cut) out = client.write(first.payload, out);
      const cols: ColumnDefinition[] = [];
      for (let i = 0; i < columnCount; i++) {
        const p = await this.#targetNext();
        cols.push(decodeColumnDefinition(p.payload));
        if (!cut) out = client.write(p.payload, out);
      }
      if (!this.#deprecateEof) {
        const eof = await this.#targetNext();
        if (!cut) out = client.write(eof.payload, out);
      }
      const masks = this.#columnMasks(work.plan, cols, work.sql);
      const types = cols.map((c) => c.type);
      const counts: Record<string, number> = {};
      const recorded: (string | null)[][] = [];
      let rows = 0;
      let sent = 0;
      let limited = false;
      for (;;) {
        const p = await this.#targetNext();
        const payload = p.payload;
        if (payload[0] === 0xff) {
          if (stopped !== undefined) {
            // The KILL QUERY of a cut result (or a target error after it): the client has its end.
            this.#observeRows(work, cols, rows, sent, recorded, counts, true, { sqlstate: "HY000", message: stopped.message });
            return false;
          }
          if (cut || limited) {
            client.write(this.#terminator(this.#status & ~STATUS.MORE_RESULTS_EXISTS, this.#addedWarnings(work)), out);
            this.#observeRows(work, cols, rows, sent, recorded, counts, true);
            return true;
          }
          const error = this.#forwardErr(p, work, out, counts);
          this.#observeRows(work, cols, rows, sent, recorded, counts, false, error);
          return false;
        }
        if (isRowsTerminator(payload, this.#deprecateEof)) {
          const status = terminatorStatus(payload, this.#o.capabilities);
          this.#status = status;
          if (!cut) {
            if (limited) {
              client.write(this.#terminator(status & ~STATUS.MORE_RESULTS_EXISTS, this.#addedWarnings(work)), out);
              cut = true;
            } else {
              if (work.diagnostic?.kind === "list" && cols.length === 3) {
                // SHOW WARNINGS: the target's rows, then the gateway's (not charged to budgets: the gateway's own words).
                for (const w of work.diagnostic.warnings) {
                  const message = gatewayText(w);
                  out = client.write(encodeTextRow([Buffer.from("Warning"), Buffer.from(String(GATEWAY_WARNING_CODE)), Buffer.from(message, "utf8")]), out);
                  sent++;
                  rows++;
                  if (recorded.length < this.#o.maxRowsPerStatement) recorded.push(["Warning", String(GATEWAY_WARNING_CODE), this.#clip(message)]);
                }
              }
              out = client.write(addTerminatorWarnings(payload, this.#o.capabilities, this.#addedWarnings(work)), out);
            }
          }
          this.#observeRows(work, cols, rows, sent, recorded, counts, limited || stopped !== undefined, stopped === undefined ? undefined : { sqlstate: "HY000", message: stopped.message });
          if ((status & STATUS.MORE_RESULTS_EXISTS) === 0) return stopped === undefined;
          break;
        }
        rows++;
        if (cut || limited) continue;
        const max = work.plan?.maxRows;
        if (max !== undefined && sent >= max) {
          limited = true;
          this.#kill();
          continue;
        }
        let row = work.binary ? this.#binaryRow(payload, cols, types, masks, counts) : this.#textRow(payload, cols, masks, counts);
        if (work.diagnostic?.kind === "count" && cols.length === 1) row = countWithGateway(row, work.diagnostic.warnings.length);
        const watch = this.#o.gate.results;
        if (watch !== undefined) {
          const v = this.#watchRow(watch, work, row, cols, types);
          if (v.type !== "pass") {
            // Budget spent (cut) or session ended: the client has the rows so far and now an
            // ERR as the answer's end (what a killed statement gives); the rest is discarded.
            rows--;
            stopped = v.refusal;
            cut = true;
            if (!this.#ended) client.write(renderRefusal(v.refusal), out);
            if (v.type === "cut") this.#kill();
            continue;
          }
          row = v.row;
        }
        out = client.write(row.payload, out);
        sent++;
        if (recorded.length < this.#o.maxRowsPerStatement) recorded.push(row.shown);
        if (client.socket.writableNeedDrain) await client.drained();
      }
    }
  }

  /**
   * Budgets and result scanning (core/result-watch.ts) for one row about to be sent, after
   * masking: the row to send (values replaced by the scan re-encoded), or the refusal that stops
   * the answer. Notices (a budget near its end, findings under `annotate`) become MySQL
   * warnings: counted in the statement's terminator and listed by the next SHOW WARNINGS.
   */
  #watchRow(
    watch: ResultWatch,
    work: Work,
    row: { payload: Buffer; shown: (string | null)[] },
    cols: readonly ColumnDefinition[],
    types: readonly number[],
  ): { readonly type: "pass"; readonly row: { payload: Buffer; shown: (string | null)[] } } | { readonly type: "cut" | "end"; readonly refusal: DenyDecision } {
    const p = row.payload;
    let values: WatchedValue[] = [];
    let binary: (BinaryValue | null)[] | undefined;
    if (watch.wantsValues) {
      if (work.binary) {
        binary = decodeBinaryRow(p, types);
        values = binary.map((v, i) => {
          const col = cols[i];
          return v === null || col === undefined || !isBinaryStringType(col.type) || col.charset === BINARY_CHARSET ? null : p.toString("utf8", v.start, v.end);
        });
      } else values = decodeTextRow(p, cols.length).map((s) => (s === null ? null : p.toString("utf8", s.start, s.end)));
    }
    const v = watch.row(work.seq, p.length + 4, values);
    switch (v.type) {
      case "pass": {
        for (const n of v.notices ?? []) this.#warn(work.seq, n);
        const replace = v.replace;
        if (replace === undefined || replace.size === 0) return { type: "pass", row };
        if (binary !== undefined) {
          const map = new Map<number, Buffer | null>([...replace].map(([i, t]) => [i, Buffer.from(t, "utf8")]));
          const rebuilt = encodeBinaryRow(p, types, binary, map);
          return { type: "pass", row: { payload: rebuilt, shown: row.shown.map((x, i) => replace.get(i) ?? x) } };
        }
        const spans = decodeTextRow(p, cols.length);
        const rebuilt = encodeTextRow(spans.map((sp, i) => {
          const r = replace.get(i);
          return r !== undefined ? Buffer.from(r, "utf8") : sp === null ? null : p.subarray(sp.start, sp.end);
        }));
        return { type: "pass", row: { payload: rebuilt, shown: row.shown.map((x, i) => replace.get(i) ?? x) } };
      }
      case "cut":
        for (const n of v.notices ?? []) this.#warn(work.seq, n);
        return { type: "cut", refusal: v.refusal };
      case "end":
        return { type: "end", refusal: v.refusal };
    }
  }

  #clip(s: string): string {
    return s.length > this.#o.maxValueBytes ? `${s.slice(0, this.#o.maxValueBytes)}…` : s;
  }

  #textRow(payload: Buffer, cols: readonly ColumnDefinition[], masks: readonly (ColumnMask | undefined)[] | undefined, counts: Record<string, number>): { payload: Buffer; shown: (string | null)[] } {
    const spans = decodeTextRow(payload, cols.length);
    if (masks === undefined) return { payload, shown: spans.map((s) => (s === null ? null : this.#clip(payload.toString("utf8", s.start, s.end)))) };
    let changed = false;
    const values: (Buffer | null)[] = [];
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      const m = masks[i];
      if (s === null || s === undefined) {
        values.push(null);
        continue;
      }
      const r = m === undefined ? undefined : maskValue(m, payload, s.start, s.end, counts);
      if (r !== undefined) changed = true;
      values.push(r === undefined ? payload.subarray(s.start, s.end) : r);
    }
    return { payload: changed ? encodeTextRow(values) : payload, shown: values.map((v) => (v === null ? null : this.#clip(v.toString("utf8")))) };
  }

  #binaryRow(
    payload: Buffer,
    cols: readonly ColumnDefinition[],
    types: readonly number[],
    masks: readonly (ColumnMask | undefined)[] | undefined,
    counts: Record<string, number>,
  ): { payload: Buffer; shown: (string | null)[] } {
    const values = decodeBinaryRow(payload, types);
    const show = (p: Buffer, v: BinaryValue | null, i: number): string | null => (v === null ? null : this.#clip(binaryValueText(p, types[i] ?? TYPE.NULL, cols[i]?.flags ?? 0, v)));
    if (masks === undefined) return { payload, shown: values.map((v, i) => show(payload, v, i)) };
    const replace = new Map<number, Buffer | null>();
    values.forEach((v, i) => {
      const m = masks[i];
      const col = cols[i];
      if (v === null || m === undefined || col === undefined) return;
      if (isBinaryStringType(col.type) && (col.charset !== BINARY_CHARSET || m.whole !== undefined)) {
        const r = maskValue(m, payload, v.start, v.end, counts);
        if (r !== undefined) replace.set(i, r);
      } else if (m.whole !== undefined) {
        // A number or date a column rule covers cannot hold a label in the binary protocol: NULL.
        replace.set(i, null);
        counts["column"] = (counts["column"] ?? 0) + 1;
      }
    });
    if (replace.size === 0) return { payload, shown: values.map((v, i) => show(payload, v, i)) };
    const rebuilt = encodeBinaryRow(payload, types, values, replace);
    const again = decodeBinaryRow(rebuilt, types);
    return { payload: rebuilt, shown: again.map((v, i) => show(rebuilt, v, i)) };
  }

  #observe(work: Work, r: { rowCount: number; commandTag?: string; error?: { sqlstate: string; message: string }; masked?: Record<string, number> }): void {
    const gate = this.#o.gate;
    gate.observe({
      type: "db.result",
      session: gate.info,
      seq: work.seq,
      kind: work.kind,
      ...(work.params === undefined ? {} : { params: work.params }),
      rowCount: r.rowCount,
      ...(r.commandTag === undefined ? {} : { commandTag: r.commandTag }),
      ...(r.error === undefined ? {} : { error: r.error }),
      ...(r.masked === undefined || Object.keys(r.masked).length === 0 ? {} : { masked: r.masked }),
      durationMs: Date.now() - work.started,
    });
  }

  #observeRows(
    work: Work,
    cols: readonly ColumnDefinition[],
    rows: number,
    sent: number,
    recorded: (string | null)[][],
    counts: Record<string, number>,
    limited: boolean,
    error?: { sqlstate: string; message: string },
  ): void {
    const gate = this.#o.gate;
    gate.observe({
      type: "db.result",
      session: gate.info,
      seq: work.seq,
      kind: work.kind,
      ...(work.params === undefined ? {} : { params: work.params }),
      commandTag: `SELECT ${sent}`,
      rowCount: limited ? sent : rows,
      columns: cols.map((c) => c.name),
      rows: recorded,
      ...(rows > recorded.length ? { rowsTruncated: true } : {}),
      ...(limited ? { rowsSent: sent } : {}),
      ...(error === undefined ? {} : { error }),
      ...(Object.keys(counts).length === 0 ? {} : { masked: counts }),
      durationMs: Date.now() - work.started,
    });
  }
}

/** The one value of SHOW COUNT(*) WARNINGS / SELECT @@warning_count, with the gateway's warnings added. */
function countWithGateway(row: { payload: Buffer; shown: (string | null)[] }, add: number): { payload: Buffer; shown: (string | null)[] } {
  const n = Number(row.shown[0] ?? "");
  if (!Number.isInteger(n)) return row;
  const text = String(n + add);
  return { payload: encodeTextRow([Buffer.from(text)]), shown: [text] };
}

/** The sources behind column `column` of relation `table` when the statement's lineage names it a derived relation (case-insensitively: over-matching only masks more). */
function derivedSources(derived: readonly DerivedRelation[], schema: string, table: string, column: string): SourceColumn[] | undefined {
  if (derived.length === 0) return undefined;
  const t = table.toLowerCase();
  const s = schema.toLowerCase();
  const col = column.toLowerCase();
  let out: SourceColumn[] | undefined;
  for (const d of derived) {
    // A view's field may name no database (a column computed in the view): any view of that name.
    if (d.name.toLowerCase() !== t || (d.schema !== undefined && s !== "" && d.schema.toLowerCase() !== s)) continue;
    out ??= [];
    out.push(...(Object.hasOwn(d.columns, col) ? (d.columns[col] ?? d.all) : d.all));
  }
  return out;
}

/** How one column's values are masked: whole (a column rule) or by content (detectors). */
type ColumnMask = { readonly whole: RuleMasker; readonly chain?: undefined } | { readonly chain: MaskChain; readonly whole?: undefined };

/** The masked value, or undefined when it stays as it is. */
function maskValue(m: ColumnMask, buf: Buffer, start: number, end: number, counts: Record<string, number>): Buffer | null | undefined {
  if (m.whole !== undefined) {
    const text = buf.toString("utf8", start, end);
    const kind = m.whole.kindOf(text);
    const r = m.whole.maskWhole(text, kind);
    counts[kind] = (counts[kind] ?? 0) + 1;
    return r === null ? null : Buffer.from(r, "utf8");
  }
  return m.chain.range(buf, start, end, counts);
}
