/**
 * Tiny server-rendered pages (login results). Everything interpolated is escaped with
 * escapeHtml; a strict CSP forbids scripts and framing; nothing is cached or sent as referrer.
 */
import type { FastifyReply } from "fastify";

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`=/]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function resultPage(reply: FastifyReply, status: number, title: string, bodyHtml: string): FastifyReply {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}textarea{width:100%;font-family:monospace}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${bodyHtml}
</body></html>
`;
  return reply
    .code(status)
    .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'")
    .header("cache-control", "no-store")
    .header("referrer-policy", "no-referrer")
    .header("x-content-type-options", "nosniff")
    .header("x-frame-options", "DENY")
    .type("text/html; charset=utf-8")
    .send(html);
}
