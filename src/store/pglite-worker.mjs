/**
 * The embedded store's own thread. PGlite (PostgreSQL compiled to WASM) runs here so that its
 * CPU time — every audit batch the gateway ships — never stalls the main event loop, which
 * carries the data path. The main-thread side is `PgliteWorkerClient` in sql.ts.
 *
 * Plain JavaScript that imports only `@electric-sql/pglite`: Node 20 can load it as a Worker
 * both from src/ (under vitest, without a TypeScript loader) and from dist/ (copied there by
 * scripts/copy-assets.mjs).
 *
 * Protocol. Each request is `{ id, op, ... }`; each gets exactly one reply,
 * `{ id, ok: true, value }` or `{ id, ok: false, error }`:
 *   open {dir} → null · query {sql, params, tx} → rows · execute {sql, params, tx} → affected rows
 *   script {sql, tx} → null · begin → transaction id · commit|rollback {tx} → null · close → null
 * `tx` is null outside a transaction. Rows and parameters cross as structured clones (Date,
 * bigint, Uint8Array, plain objects and arrays survive; functions never cross). Row schemas stay
 * in the main thread, which validates every row.
 *
 * Serialisation invariant. PGlite is one connection: `query`, `exec` and `transaction` on the
 * PGlite object all take its transaction mutex (FIFO), while the callback's `tx` object runs
 * inside it. So a statement outside a transaction that arrives while one is open waits for the
 * COMMIT/ROLLBACK — queued, never interleaved — exactly as when PGlite runs in the main thread.
 * A transaction stays open here between `begin` and `commit`/`rollback` because its PGlite
 * callback awaits a promise that only those two requests settle.
 */
import { parentPort } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";

if (parentPort === null) throw new Error("pglite-worker.mjs must run as a worker thread");
const port = parentPort;

/** @type {PGlite | undefined} */
let db;
/** Set on `close`: later statements and transactions outside an open one are refused. */
let closing = false;

/**
 * Open transactions by id.
 * @typedef {{ tx: { query: PGlite["query"], exec: PGlite["exec"] }, commit: () => void, rollback: () => void, settled: Promise<unknown> }} OpenTx
 * @type {Map<number, OpenTx>}
 */
const txs = new Map();

/** Rejection reason that makes PGlite's transaction() roll back; swallowed by `end`. */
const ROLLBACK = Symbol("rollback");

port.on("message", (msg) => {
  void handle(msg);
});

async function handle(msg) {
  let value;
  try {
    value = await run(msg);
  } catch (e) {
    replyError(msg.id, e);
    return;
  }
  try {
    port.postMessage({ id: msg.id, ok: true, value });
  } catch (e) {
    // A value structured clone cannot carry (a custom type parser returning a function, say).
    replyError(msg.id, e);
  }
}

async function run(msg) {
  switch (msg.op) {
    case "open":
      // 32 MB of shared buffers instead of PGlite's 128 MB: the store's working set (recent
      // audit segments, sessions, tokens) is small, and every MB here is resident memory of
      // the gateway (measured: about 130 MB less RSS at 16 MB).
      db = await PGlite.create(msg.dir, { startParams: [...PGlite.defaultStartParams, "-c", "shared_buffers=32MB"] });
      return null;
    case "query":
      return (await target(msg.tx).query(msg.sql, msg.params)).rows;
    case "execute":
      return (await target(msg.tx).query(msg.sql, msg.params)).affectedRows ?? 0;
    case "script":
      await target(msg.tx).exec(msg.sql);
      return null;
    case "begin":
      return await begin(msg.id);
    case "commit":
      return await end(msg.tx, true);
    case "rollback":
      return await end(msg.tx, false);
    case "close":
      closing = true;
      // PGlite's close() takes the transaction mutex: statements already queued and an open
      // transaction finish first.
      if (db !== undefined && !db.closed) await db.close();
      return null;
    default:
      throw new Error(`unknown store worker request ${String(msg.op)}`);
  }
}

function open() {
  if (db === undefined) throw new Error("PGlite is not open");
  if (closing) throw new Error("PGlite is closed");
  return db;
}

function target(txId) {
  if (txId === null) return open();
  const t = txs.get(txId);
  if (t === undefined) throw new Error("Transaction is closed");
  return t.tx;
}

/** Resolves with the transaction's id once BEGIN has run (PGlite's mutex is ours until `end`). */
function begin(id) {
  const pg = open();
  return new Promise((resolve, reject) => {
    const holder = { settled: Promise.resolve() };
    holder.settled = pg.transaction(
      (tx) =>
        new Promise((commit, abort) => {
          txs.set(id, { tx, commit: () => commit(null), rollback: () => abort(ROLLBACK), settled: holder.settled });
          resolve(id);
        }),
    );
    // Rejects `begin` when BEGIN itself fails; a no-op once it has resolved (`end` reports later failures).
    holder.settled.catch(reject);
  });
}

async function end(txId, commit) {
  const t = txs.get(txId);
  if (t === undefined) throw new Error("Transaction is closed");
  txs.delete(txId);
  if (commit) t.commit();
  else t.rollback();
  try {
    await t.settled; // COMMIT (or ROLLBACK) has run; a failed COMMIT rejects here
  } catch (e) {
    if (e !== ROLLBACK) throw e;
  }
  return null;
}

/**
 * An Error flattened for structured clone, which would otherwise drop PGlite's own fields
 * (code, severity, detail, position, query, params…). The main thread rebuilds an Error with
 * the same name, message and fields as the `cause` of its GW_STORE error.
 */
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
    // Some field cannot be cloned: keep the primitive ones, which carry the diagnosis.
    port.postMessage({ id, ok: false, error: { name: error.name, message: error.message, stack: error.stack, props: primitiveProps(error.props) } });
  }
}
