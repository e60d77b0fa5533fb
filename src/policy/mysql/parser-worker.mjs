/**
 * One MySQL parser (dt-sql-parser's MySQL grammar: ANTLR, plain JavaScript) in its own thread,
 * for a ParserPool (src/policy/sql/parser-pool.ts) created with this file as its workerUrl.
 *
 * Why a thread: an ANTLR parse of hostile text can cost seconds (adaptive prediction) or
 * overflow the stack; here that stalls only this thread, which the pool terminates and replaces.
 *
 * dt-sql-parser's ESM build imports directories and extension-less paths (it is built for
 * bundlers); dt-resolve-hook.mjs lets plain Node load it.
 *
 * Protocol (the pool's): after loading, `{ ready: true }`; each `{ id, sql }` gets one reply:
 *   `{ id, ok: true, json }`          the parse tree, compacted (see compact());
 *   `{ id, ok: false, message }`      the grammar rejected the text (a syntax error);
 *   `{ id, fault }`                   anything else (stack overflow, …): the pool replaces us.
 */
import { register } from "node:module";
import { URL } from "node:url";
import { parentPort } from "node:worker_threads";

if (parentPort === null) throw new Error("parser-worker.mjs must run as a worker thread");
const port = parentPort;

register(new URL("./dt-resolve-hook.mjs", import.meta.url));
const { parseMysqlTree } = await import("./tree.mjs");

port.on("message", (msg) => {
  const id = msg.id;
  let outcome;
  try {
    outcome = parseMysqlTree(msg.sql);
  } catch (e) {
    port.postMessage({ id, fault: e instanceof Error ? e.name : "unknown" });
    return;
  }
  if (outcome.ok) port.postMessage({ id, ok: true, json: JSON.stringify(outcome.tree) });
  else port.postMessage({ id, ok: false, message: outcome.message });
});

port.postMessage({ ready: true });
