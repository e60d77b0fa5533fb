/**
 * PostgreSQL frontend/backend protocol v3 codecs: pure functions over bytes (no I/O, no policy,
 * no logging). See framer.ts, frontend.ts, backend.ts, auth.ts.
 */
export * from "./framer.js";
export * from "./frontend.js";
export * from "./backend.js";
export * from "./auth.js";
