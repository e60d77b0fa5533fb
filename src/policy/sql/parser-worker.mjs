/**
 * One PostgreSQL parser (libpg-query, WASM) in its own thread, for ParserPool (parser-pool.ts).
 *
 * Why a thread: a statement can cost the parser seconds of CPU or overflow its stack; here that
 * stalls or damages only this thread's WASM instance, which the pool terminates and replaces
 * (its whole heap goes with it), instead of the gateway's event loop and its only parser.
 *
 * Plain JavaScript that imports only `libpg-query`: Node 20 loads it as a Worker both from src/
 * (under vitest, without a TypeScript loader) and from dist/ (copied by scripts/copy-assets.mjs).
 *
 * Protocol: after loading, the worker posts `{ ready: true }`. Each request `{ id, sql }` gets
 * exactly one reply:
 *   `{ id, ok: true, json }`                      the parse tree, as libpg_query's JSON text;
 *   `{ id, ok: false, message, cursorPosition }`  PostgreSQL's parser rejected the text;
 *   `{ id, fault }`                               anything else (stack overflow, abort, OOM): the
 *                                                 instance may be damaged; the pool replaces it.
 */
import { parentPort } from "node:worker_threads";
import { hasSqlDetails, loadModule, parseSync } from "libpg-query";

if (parentPort === null) throw new Error("parser-worker.mjs must run as a worker thread");
const port = parentPort;

await loadModule();

port.on("message", (msg) => {
  const id = msg.id;
  let json;
  try {
    // As text: a string crosses to the main thread as one copy, and JSON.parse there is much
    // cheaper than deserialising a structured clone of the object graph.
    json = JSON.stringify(parseSync(msg.sql));
  } catch (e) {
    if (hasSqlDetails(e) && e.sqlDetails !== undefined) {
      port.postMessage({ id, ok: false, message: String(e.sqlDetails.message), cursorPosition: e.sqlDetails.cursorPosition });
    } else {
      // RangeError (stack), WebAssembly.RuntimeError (abort, memory): never parse here again.
      port.postMessage({ id, fault: e instanceof Error ? e.name : "unknown" });
    }
    return;
  }
  port.postMessage({ id, ok: true, json });
});

port.postMessage({ ready: true });
