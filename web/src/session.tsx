// A session's page: its replay (a SQL timeline, HTTP exchanges as a list, a terminal player for
// SSH and kubectl exec) and, while it runs, its live view: the same views fed by the server's
// live stream (GET /v1/console/sessions/:id/live, Server-Sent Events), as the gateway records.
import { Terminal } from "@xterm/xterm";
import { useEffect, useRef, useState } from "react";
import * as S from "../../src/api/console-schemas.js";
import { get, getText } from "./api.js";
import { Badge, ErrorNote, has, useLoad, when } from "./pages.js";
import { TerminalPlayer } from "./player.js";

type SignedIn = Extract<S.ConsoleSession, { signedIn: true }>;
type Query = Extract<S.RecordingEntryView, { kind: "query" }>;
type Result = Extract<S.RecordingEntryView, { kind: "result" }>;

/** Entries kept in the live view at most (the oldest are dropped; the replay has them all). */
const LIVE_MAX_ENTRIES = 2000;

/** An HTTP exchange is recorded as a result with these rows (src/protocols/http/engine.ts). */
function isHttpResult(r: Result): boolean {
  return (r.commandTag ?? "").startsWith("HTTP ") && r.columns !== undefined && r.columns.length === 2 && r.columns[0] === "part" && r.columns[1] === "content";
}

function part(r: Result, name: string): string | undefined {
  const row = r.rows?.find((x) => x[0] === name);
  return row?.[1] ?? undefined;
}

function prettyHeaders(json: string | undefined): string {
  if (json === undefined) return "";
  try {
    const o = JSON.parse(json) as Record<string, unknown>;
    return Object.entries(o)
      .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`)
      .join("\n");
  } catch {
    return json;
  }
}

/** Shown per body at most; the recording itself is capped by the gateway (http.maxRecordedBytes). */
const BODY_SHOWN = 16 * 1024;

function HttpExchanges({ recording }: { recording: readonly S.RecordingEntryView[] }) {
  const results = new Map<number, Result>();
  for (const e of recording) if (e.kind === "result") results.set(e.seq, e);
  const requests = recording.filter((e): e is Query => e.kind === "query");
  return (
    <ol className="exchanges" id="exchanges">
      {requests.map((q) => {
        const r = results.get(q.seq);
        const status = r === undefined ? undefined : part(r, "response status");
        const body = r === undefined ? undefined : part(r, "response body");
        const code = Number((status ?? "").split(" ")[0]);
        return (
          <li key={`${q.seq}-${q.t}`} className={`exchange step-${q.decision}`} data-seq={q.seq}>
            <div className="step-head">
              <span className="mono">+{(q.t / 1000).toFixed(3)}s</span>
              <b className="mono request-line">{r === undefined ? q.sql : (part(r, "request") ?? q.sql)}</b>
              <Badge kind={q.decision === "allow" ? "approved" : q.decision === "deny" ? "denied" : "pending"}>{q.decision}</Badge>
              {status !== undefined && <span className={`badge ${code >= 400 ? "denied" : "approved"} status`}>{status}</span>}
              {q.rule !== undefined && <code>{q.rule}</code>}
              {r !== undefined && (
                <span className="note">
                  {r.rowCount} bytes · {r.durationMs} ms
                  {r.masked !== undefined && Object.keys(r.masked).length > 0 ? ` · masked ${Object.entries(r.masked).map(([k, v]) => `${k}×${v}`).join(", ")}` : ""}
                </span>
              )}
            </div>
            {q.message !== undefined && <div className="note">{q.message}</div>}
            {r?.error !== undefined && <div className="notice error">{r.error.message}</div>}
            {r !== undefined && (
              <details className="exchange-detail">
                <summary>Headers and body</summary>
                <h3>Request headers</h3>
                <pre>{prettyHeaders(part(r, "request headers"))}</pre>
                <h3>Response headers</h3>
                <pre>{prettyHeaders(part(r, "response headers"))}</pre>
                <h3>Response body {r.rowsTruncated === true || (body ?? "").endsWith(" …") ? <span className="note">(capped: the gateway records the first bytes)</span> : null}</h3>
                <pre className="body">{body === undefined || body === "" ? "(empty)" : body.length > BODY_SHOWN ? `${body.slice(0, BODY_SHOWN)} …` : body}</pre>
              </details>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function Recording({ recording }: { recording: readonly S.RecordingEntryView[] }) {
  const http = recording.some((e) => e.kind === "result" && isHttpResult(e));
  return http ? <HttpExchanges recording={recording} /> : <SqlTimeline recording={recording} />;
}

/** A terminal fed as output arrives (the live view of an SSH or kubectl exec session). */
function LiveTerminal({ size, chunks }: { size: { width: number; height: number }; chunks: { readonly list: string[] } }) {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const written = useRef(0);
  useEffect(() => {
    const t = new Terminal({ cols: Math.min(Math.max(size.width, 20), 500), rows: Math.min(Math.max(size.height, 5), 200), disableStdin: true, fontSize: 13, scrollback: 5000 });
    if (host.current !== null) t.open(host.current);
    term.current = t;
    written.current = 0;
    return () => t.dispose();
  }, [size.width, size.height]);
  useEffect(() => {
    const t = term.current;
    if (t === null) return;
    const list = chunks.list;
    if (written.current < list.length) {
      t.write(list.slice(written.current).join(""));
      written.current = list.length;
    }
  });
  return <div className="terminal" ref={host} id="live-terminal" />;
}

interface LiveState {
  readonly entries: S.RecordingEntryView[];
  readonly terminal: { width: number; height: number } | undefined;
  readonly output: { readonly list: string[] };
  readonly ended: boolean;
  readonly connected: boolean;
}

function useLive(id: string, enabled: boolean): LiveState {
  const [state, setState] = useState<LiveState>({ entries: [], terminal: undefined, output: { list: [] }, ended: false, connected: false });
  useEffect(() => {
    if (!enabled) return;
    const output = { list: [] as string[] };
    let entries: S.RecordingEntryView[] = [];
    setState({ entries, terminal: undefined, output, ended: false, connected: false });
    const es = new EventSource(`/v1/console/sessions/${encodeURIComponent(id)}/live`);
    es.onopen = () => setState((s) => ({ ...s, connected: true }));
    es.addEventListener("entry", (ev) => {
      const parsed = S.recordingEntry.safeParse(JSON.parse((ev as MessageEvent<string>).data));
      if (!parsed.success) return;
      entries = [...entries, parsed.data].slice(-LIVE_MAX_ENTRIES);
      const now = entries;
      setState((s) => ({ ...s, entries: now }));
    });
    es.addEventListener("terminal-start", (ev) => {
      const h = JSON.parse((ev as MessageEvent<string>).data) as { width?: unknown; height?: unknown };
      const width = typeof h.width === "number" && h.width > 0 ? h.width : 80;
      const height = typeof h.height === "number" && h.height > 0 ? h.height : 24;
      setState((s) => ({ ...s, terminal: { width, height } }));
    });
    es.addEventListener("terminal", (ev) => {
      const data = JSON.parse((ev as MessageEvent<string>).data) as unknown;
      if (typeof data !== "string") return;
      output.list.push(data);
      setState((s) => ({ ...s, output: { list: output.list } }));
    });
    es.addEventListener("end", () => {
      es.close();
      setState((s) => ({ ...s, ended: true, connected: false }));
    });
    es.onerror = () => setState((s) => ({ ...s, connected: false }));
    return () => es.close();
  }, [id, enabled]);
  return state;
}

export function SessionPage({ id, me }: { id: string; me: SignedIn }) {
  const [n, setN] = useState(0);
  const { data, error } = useLoad(() => get(`/v1/console/sessions/${encodeURIComponent(id)}`, S.sessionDetail), [id, n]);
  const [cast, setCast] = useState<string>();
  const watching = data?.session.live === true;
  const live = useLive(id, watching);
  useEffect(() => {
    // The session ended while watched: show its replay.
    if (live.ended) setN((x) => x + 1);
  }, [live.ended]);
  useEffect(() => {
    if (data?.hasCast !== true || data.session.live) return;
    getText(`/v1/console/sessions/${encodeURIComponent(id)}/cast`).then(setCast, () => setCast(undefined));
  }, [data, id]);
  const s = data?.session;
  return (
    <section>
      <p>
        <a href="#/sessions">← Sessions</a>
      </p>
      <h1>
        Session {id}{" "}
        {watching && (
          <span className={`live ${live.connected ? "on" : ""}`} id="session-live">
            {live.connected ? "live" : "connecting…"}
          </span>
        )}
      </h1>
      <ErrorNote error={error} />
      {s !== undefined && (
        <dl className="facts">
          <dt>Principal</dt>
          <dd>
            {s.principal.name} <span className="note mono">{s.principal.id}</span>
          </dd>
          <dt>Connection</dt>
          <dd>
            {s.connection} ({s.protocol})
          </dd>
          <dt>Client</dt>
          <dd className="mono">{s.clientAddress}</dd>
          <dt>Started</dt>
          <dd>{when(s.startedAt)}</dd>
          <dt>Ended</dt>
          <dd>{s.live ? "live" : `${when(s.endedAt)} (${s.endReason ?? "ended"})`}</dd>
          <dt>Statements</dt>
          <dd>{s.statements ?? "—"}</dd>
        </dl>
      )}
      {watching ? (
        <div id="live-view">
          {live.terminal !== undefined && <LiveTerminal size={live.terminal} chunks={live.output} />}
          <Recording recording={live.entries} />
          {live.entries.length === 0 && live.terminal === undefined && <p className="note">Waiting for the session to do something…</p>}
        </div>
      ) : (
        <>
          {cast !== undefined && <TerminalPlayer castText={cast} />}
          {data !== undefined && <Recording recording={data.recording} />}
          {data !== undefined && data.recording.length === 0 && cast === undefined && <p className="note">Nothing was recorded for this session.</p>}
        </>
      )}
      {has(me, "auditor") && s !== undefined && (
        <p className="note">
          <a href="#/audit">Audit log</a>
        </p>
      )}
    </section>
  );
}

function SqlTimeline({ recording }: { recording: readonly S.RecordingEntryView[] }) {
  const results = new Map<number, Extract<S.RecordingEntryView, { kind: "result" }>>();
  for (const e of recording) if (e.kind === "result") results.set(e.seq, e);
  const queries = recording.filter((e): e is Extract<S.RecordingEntryView, { kind: "query" }> => e.kind === "query");
  return (
    <ol className="timeline" id="timeline">
      {queries.map((q) => {
        const r = results.get(q.seq);
        return (
          <li key={`${q.seq}-${q.stage}-${q.t}`} className={`step step-${q.decision}`}>
            <div className="step-head">
              <span className="mono">+{(q.t / 1000).toFixed(3)}s</span> <Badge kind={q.decision === "allow" ? "approved" : q.decision === "deny" ? "denied" : "pending"}>{q.decision}</Badge>
              {q.rule !== undefined && <code>{q.rule}</code>}
              {r !== undefined && (
                <span className="note">
                  {r.commandTag ?? ""} · {r.rowCount} row{r.rowCount === 1 ? "" : "s"} · {r.durationMs.toFixed(1)} ms
                  {r.masked !== undefined && Object.keys(r.masked).length > 0 ? ` · masked ${Object.entries(r.masked).map(([k, v]) => `${k}×${v}`).join(", ")}` : ""}
                </span>
              )}
            </div>
            <pre className="statement">{q.sql}</pre>
            {q.params !== undefined && <div className="note mono">params: {JSON.stringify(q.params)}</div>}
            {q.message !== undefined && <div className="note">{q.message}</div>}
            {r?.error !== undefined && (
              <div className="notice error">
                {r.error.sqlstate}: {r.error.message}
              </div>
            )}
            {r?.columns !== undefined && r.rows !== undefined && r.rows.length > 0 && (
              <div className="table-wrap">
                <table className="rows">
                  <thead>
                    <tr>
                      {r.columns.map((c, i) => (
                        <th key={i}>{c}</th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {r.rows.map((row, i) => (
                      <tr key={i}>
                        {row.map((v, j) => (
                          <td key={j} className="mono">
                            {v ?? <i>NULL</i>}
                          </td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
                {r.rowsTruncated === true && <div className="note">(more rows were sent than recorded)</div>}
              </div>
            )}
          </li>
        );
      })}
    </ol>
  );
}

