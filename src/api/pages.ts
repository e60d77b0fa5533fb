/**
 * Tiny server-rendered pages (login results, the approval page). Everything interpolated is
 * escaped with escapeHtml; a strict CSP forbids scripts, inline styles other than our own
 * stylesheet (allowed by its hash, not 'unsafe-inline') and framing; nothing is cached or sent
 * as referrer.
 */
import { createHash } from "node:crypto";
import type { FastifyReply } from "fastify";

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`=/]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The one stylesheet of every page; the CSP allows exactly these bytes (by SHA-256). */
const STYLE = `
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--wait:#9a6700;--accent:#0969da}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:#fff;max-width:52rem;margin:2.5rem auto;padding:0 1.25rem}
h1{font-size:1.45rem;margin:0 0 .25rem}
h2{font-size:1.05rem;margin:1.75rem 0 .5rem}
.sub{color:var(--muted);margin:0 0 1.25rem}
code,pre,textarea{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13.5px}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:.85rem 1rem;white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
textarea{width:100%;border:1px solid var(--line);border-radius:6px;padding:.5rem .6rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1.25rem;margin:0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:.05rem .6rem;border-radius:2rem;font-size:.85rem;font-weight:600;border:1px solid currentColor;vertical-align:middle}
.pending{color:var(--wait)}.approved{color:var(--ok)}.denied,.expired,.cancelled,.revoked{color:var(--bad)}
.note{color:var(--muted);font-size:.9rem;margin:.5rem 0 0}
.notice{border-left:4px solid var(--accent);background:var(--bg);padding:.6rem .9rem;margin:1rem 0}
.error{border-left-color:var(--bad)}
table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:500}
form{margin-top:.5rem}
.actions{display:flex;gap:.75rem;margin-top:.75rem}
button{font:inherit;font-weight:600;padding:.5rem 1.4rem;border-radius:6px;border:1px solid transparent;cursor:pointer;color:#fff}
button.approve{background:var(--ok)}button.deny{background:var(--bad)}
label{display:block;font-weight:600;margin-bottom:.25rem}
footer{margin-top:2.5rem;color:var(--muted);font-size:.85rem;border-top:1px solid var(--line);padding-top:.75rem}
`;
const STYLE_HASH = `'sha256-${createHash("sha256").update(STYLE).digest("base64")}'`;

export interface PageOptions {
  /** Where forms on the page may post: nowhere (default) or this origin. */
  readonly formAction?: "none" | "self";
  /**
   * Referrer policy: `no-referrer` (default), or `same-origin` for pages with forms: under
   * `no-referrer` browsers send `Origin: null` with a form POST, and the form's Origin check
   * needs the real one. Neither ever sends a referrer to another site.
   */
  readonly referrer?: "no-referrer" | "same-origin";
  /** Extra headers (e.g. set-cookie). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Send a page with the security headers every Airlock page carries: a CSP without scripts
 * (`default-src 'none'`), our stylesheet by hash, no framing (`frame-ancestors 'none'` and
 * X-Frame-Options), forms only where allowed, `no-store`, no referrer, no MIME sniffing.
 */
export function sendPage(reply: FastifyReply, status: number, title: string, bodyHtml: string, options: PageOptions = {}): FastifyReply {
  const referrer = options.referrer ?? "no-referrer";
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="${referrer}"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head><body>
${bodyHtml}
</body></html>
`;
  const formAction = options.formAction === "self" ? "'self'" : "'none'";
  void reply
    .code(status)
    .header(
      "content-security-policy",
      `default-src 'none'; style-src ${STYLE_HASH}; img-src 'none'; base-uri 'none'; form-action ${formAction}; frame-ancestors 'none'`,
    )
    .header("cache-control", "no-store")
    .header("pragma", "no-cache")
    .header("referrer-policy", referrer)
    .header("x-content-type-options", "nosniff")
    .header("x-frame-options", "DENY")
    .header("cross-origin-opener-policy", "same-origin")
    .header("cross-origin-resource-policy", "same-origin");
  for (const [k, v] of Object.entries(options.headers ?? {})) void reply.header(k, v);
  return reply.type("text/html; charset=utf-8").send(html);
}

export function resultPage(reply: FastifyReply, status: number, title: string, bodyHtml: string): FastifyReply {
  return sendPage(reply, status, title, `<h1>${escapeHtml(title)}</h1>\n${bodyHtml}`);
}
