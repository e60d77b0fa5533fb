/**
 * The SQLite store's own thread. better-sqlite3 is synchronous: with `synchronous=FULL` every
 * commit waits for an fsync (measured here: ~8 ms p50, 16 ms p99), and even with NORMAL a WAL
 * checkpoint stalls for ~16 ms. On the main thread that would stall every session's data path;
 * here it stalls only this thread. The main-thread side is `openSqliteClient` in sql.ts, which
 * also rewrites the SQL (sqlite-dialect.ts) and the parameters before they cross.
 *
 * Plain JavaScript that imports only `better-sqlite3`, for the same reason as pglite-worker.mjs:
 * Node 20 loads it as a Worker from src/ (vitest) and from dist/ (copied by the build).
 *
 * Protocol: the same as pglite-worker.mjs. Each request is `{ id, op, ... }`; each gets exactly
 * one reply, `{ id, ok: true, value }` or `{ id, ok: false, error }`:
 *   open {dir} → null · query {sql, params, tx} → rows · execute {sql, params, tx} → affected rows
 *   script {sql, tx} → null · begin → transaction id · commit|rollback {tx} → null · close → null
 * `params` is a list bound as `$1`…`$n` (SQLite's named parameters "1"…"n").
 *
 * Serialisation invariant. One connection, one transaction at a time: between `begin` and its
 * `commit`/`rollback`, requests that do not belong to the transaction (tx null, another begin,
 * close) wait in FIFO order and run after it ends — queued, never interleaved — exactly as the
 * PGlite worker behaves. Requests naming a transaction that is not the open one fail at once.
 *
 * Durability: WAL with synchronous=FULL — a commit is on disk before its reply is sent. The
 * store holds approval decisions whose "used once" marks are a security property, and audit
 * segments; losing the last commits on power loss is not acceptable for either, and the fsync
 * costs this thread only. locking_mode=EXCLUSIVE: this process holds the database file's lock
 * for as long as it is open, so a second gateway on the same dataDir fails to open the store
 * (one writer per audit chain) instead of interleaving with this one.
 */
import { join } from "node:path";
import { parentPort } from "node:worker_threads";
import Database from "better-sqlite3";

if (parentPort === null) throw new Error("sqlite-worker.mjs must run as a worker thread");
const port = parentPort;

/** The database file inside the store directory. */
const FILE = "airlock.sqlite";
/** Prepared statements kept (the store has a few dozen distinct statements). */
const STATEMENT_CACHE = 256;

/** @type {import("better-sqlite3").Database | undefined} */
let db;
let closing = false;
/** Id of the open transaction (its `begin` request's id), or null. */
let openTx = null;
/** Requests waiting for the open transaction to end. */
const waiting = [];
/** @type {Map<string, import("better-sqlite3").Statement>} */
const statements = new Map();

port.on("message", (msg) => {
  if (openTx !== null && !belongsToOpenTx(msg)) {
    waiting.push(msg);
    return;
  }
  handle(msg);
  while (openTx === null && waiting.length > 0) handle(waiting.shift());
});

/** Statements in a transaction, and its end, run now; so do requests for a stale transaction (they fail). */
function belongsToOpenTx(msg) {
  if (msg.op === "commit" || msg.op === "rollback") return true;
  return (msg.op === "query" || msg.op === "execute" || msg.op === "script") && msg.tx !== null;
}

function handle(msg) {
  let value;
  try {
    value = run(msg);
  } catch (e) {
    replyError(msg.id, e);
    return;
  }
  try {
    port.postMessage({ id: msg.id, ok: true, value });
  } catch (e) {
    replyError(msg.id, e);
  }
}

function run(msg) {
  switch (msg.op) {
    case "open":
      return openDb(msg.dir);
    case "query": {
      checkTx(msg.tx);
      const st = prepare(msg.sql);
      const params = bindings(msg.params);
      if (st.reader) return st.all(params);
      st.run(params);
      return [];
    }
    case "execute": {
      checkTx(msg.tx);
      const st = prepare(msg.sql);
      const params = bindings(msg.params);
      return st.reader ? st.all(params).length : st.run(params).changes;
    }
    case "script":
      checkTx(msg.tx);
      open().exec(msg.sql);
      return null;
    case "begin":
      open().exec("BEGIN IMMEDIATE");
      openTx = msg.id;
      return msg.id;
    case "commit":
      return end(msg.tx, true);
    case "rollback":
      return end(msg.tx, false);
    case "close":
      closing = true;
      if (db !== undefined && db.open) {
        statements.clear();
        db.close();
      }
      return null;
    default:
      throw new Error(`unknown store worker request ${String(msg.op)}`);
  }
}

function openDb(dir) {
  const d = new Database(join(dir, FILE), { timeout: 5000 });
  try {
    // Before WAL: in exclusive locking mode WAL keeps its index in heap memory (no -shm file).
    d.pragma("locking_mode = EXCLUSIVE");
    d.pragma("journal_mode = WAL");
    d.pragma("synchronous = FULL");
    d.pragma("foreign_keys = ON");
    // Take the lock now (it is kept until close): a second process fails here, not mid-write.
    d.exec("BEGIN EXCLUSIVE; COMMIT");
  } catch (e) {
    d.close();
    throw e;
  }
  db = d;
  return null;
}

function open() {
  if (db === undefined) throw new Error("SQLite is not open");
  if (closing || !db.open) throw new Error("SQLite is closed");
  return db;
}

function checkTx(txId) {
  if (txId === null) {
    open();
    return;
  }
  if (txId !== openTx) throw new Error("Transaction is closed");
}

function prepare(sql) {
  const d = open();
  let st = statements.get(sql);
  if (st === undefined) {
    st = d.prepare(sql);
    if (statements.size >= STATEMENT_CACHE) statements.delete(statements.keys().next().value);
    statements.set(sql, st);
  }
  return st;
}

function bindings(params) {
  const out = {};
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    // Structured clone turns a Buffer into a Uint8Array; better-sqlite3 binds Buffers.
    out[String(i + 1)] = p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p;
  }
  return out;
}

function end(txId, commit) {
  if (txId !== openTx) throw new Error("Transaction is closed");
  openTx = null;
  const d = open();
  if (!commit) {
    if (d.inTransaction) d.exec("ROLLBACK");
    return null;
  }
  try {
    d.exec("COMMIT");
  } catch (e) {
    if (d.inTransaction) d.exec("ROLLBACK");
    throw e;
  }
  return null;
}

/** An Error flattened for structured clone (as pglite-worker.mjs does); the main thread rebuilds it. */
function serializeError(e, depth = 0) {
  if (!(e instanceof Error)) return { name: "Error", message: String(e), props: {} };
  const props = {};
  for (const key of Object.keys(e)) props[key] = e[key];
  const out = { name: e.name, message: e.message, stack: e.stack, props };
  if (e.cause !== undefined && depth < 4) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

function primitiveProps(props) {
  const out = {};
  for (const [key, v] of Object.entries(props)) {
    if (v === null || ["string", "number", "boolean", "bigint", "undefined"].includes(typeof v)) out[key] = v;
  }
  return out;
}

function replyError(id, e) {
  const error = serializeError(e);
  try {
    port.postMessage({ id, ok: false, error });
  } catch {
    port.postMessage({ id, ok: false, error: { name: error.name, message: error.message, stack: error.stack, props: primitiveProps(error.props) } });
  }
}
