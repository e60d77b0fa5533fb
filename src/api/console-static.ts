/**
 * Serves the built web console (web/ → dist/web, `npm run build`) at `/` on the API listener.
 *
 * The files are read once at start (a few hundred KB) and answered from memory. Every answer
 * carries a strict CSP: scripts only from this origin (no inline scripts, no eval), connections
 * only to this origin, no framing, no plugins, forms only here. Styles allow 'unsafe-inline'
 * because the terminal player (xterm.js) writes its own <style> element; no script can come in
 * that way. Only files under the build directory are served; anything else is 404.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Where the built console is: dist/web next to the compiled code, or the checkout's dist/web when running from src/. */
export function consoleBuildDir(): string | undefined {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const candidates = here.split(sep).includes("dist") ? [join(here, "..", "..", "web")] : [join(here, "..", "..", "dist", "web")];
  return candidates.find((d) => existsSync(join(d, "index.html")));
}

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

function load(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    const type = TYPES[extname(entry.name)];
    if (type === undefined) continue;
    files.set(`/${relative(dir, full).split(sep).join("/")}`, { body: readFileSync(full), type });
  }
  return files;
}

function secure(reply: FastifyReply, immutable: boolean): FastifyReply {
  return reply
    .header("content-security-policy", CONSOLE_CSP)
    .header("cache-control", immutable ? "public, max-age=31536000, immutable" : "no-store")
    .header("referrer-policy", "same-origin")
    .header("x-content-type-options", "nosniff")
    .header("x-frame-options", "DENY")
    .header("cross-origin-opener-policy", "same-origin")
    .header("cross-origin-resource-policy", "same-origin");
}

export function registerConsoleStatic(app: FastifyInstance, dir: string | undefined = consoleBuildDir()): void {
  const pub = { config: { airlockAccess: "public" as const } };
  const files = dir === undefined ? new Map<string, StaticFile>() : load(dir);
  const index = files.get("/index.html");

  app.get("/", pub, async (_request, reply) => {
    if (index === undefined) {
      return secure(reply, false)
        .code(503)
        .type("text/plain; charset=utf-8")
        .send("The web console is not built: run `npm run build` (it writes dist/web).\n");
    }
    return secure(reply, false).type(index.type).send(index.body);
  });

  app.get("/assets/*", pub, async (request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const f = files.get(decodeURIComponent(path));
    if (f === undefined) return reply.code(404).type("text/plain; charset=utf-8").send("not found\n");
    // Vite names assets by content hash: cacheable forever.
    return secure(reply, true).type(f.type).send(f.body);
  });

  app.get("/favicon.svg", pub, async (_request, reply) => {
    const f = files.get("/favicon.svg");
    if (f === undefined) return reply.code(404).type("text/plain; charset=utf-8").send("not found\n");
    return secure(reply, false).type(f.type).send(f.body);
  });
}
