// The console's pages. What a page shows follows the caller's roles; what it may do is decided
// by the server (every route checks roles; the buttons shown here are a convenience).
import { useEffect, useState, type SyntheticEvent, type ReactNode } from "react";
import type { z } from "zod";
import * as S from "../../src/api/console-schemas.js";
import { ApiError, get, post, query } from "./api.js";
import { deletePolicy, PolicyEditor, TestConnection } from "./editing.js";
import { ConnectionForm, type EditTarget } from "./connection-form.js";

type SignedIn = Extract<S.ConsoleSession, { signedIn: true }>;
type Role = SignedIn["roles"][number];

export function has(me: SignedIn, role: Role): boolean {
  return me.roles.includes(role);
}

export function when(iso: string | undefined): string {
  if (iso === undefined) return "—";
  return iso.replace("T", " ").replace(/\.\d+Z$/u, " UTC");
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => {
        if (live) {
          setData(d);
          setError(undefined);
        }
      },
      (e: unknown) => {
        if (live) setError(e instanceof Error ? e.message : String(e));
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

export function ErrorNote({ error }: { error: string | undefined }) {
  return error === undefined ? null : (
    <div className="notice error" role="alert">
      {error}
    </div>
  );
}

export function Badge({ kind, children }: { kind: string; children: ReactNode }) {
  return <span className={`badge ${kind}`}>{children}</span>;
}

// ---------------------------------------------------------------------------------- login

export function LoginPage({ oidc, onSignedIn, failed }: { oidc: boolean; onSignedIn: () => void; failed: boolean }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | undefined>(failed ? "The sign-in did not complete: try again." : undefined);
  const submit = async (e: SyntheticEvent): Promise<void> => {
    e.preventDefault();
    try {
      await post("/v1/console/login", { token }, S.consoleSession.or(S.loginBody.partial()).or(S.errorBody.partial()));
      onSignedIn();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <main className="login">
      <h1>Airlock</h1>
      <p className="sub">Sign in to the console.</p>
      {oidc && (
        <p>
          <a className="button primary" id="sso" href="/v1/console/login/oidc">
            Sign in with your identity provider
          </a>
        </p>
      )}
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="token">Or paste an Airlock token</label>
        <textarea id="token" rows={4} value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" spellCheck={false} />
        <button type="submit" className="primary" id="sign-in">
          Sign in
        </button>
      </form>
      <ErrorNote error={error} />
      <p className="note">The demo prints a one-time login link when it starts.</p>
    </main>
  );
}

// ---------------------------------------------------------------------------------- approvals

function ApprovalCard({ r, focus }: { r: S.ApprovalView; focus: boolean }) {
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<string>();
  const decide = async (vote: "approve" | "deny"): Promise<void> => {
    try {
      const base = r.kind === "grant" ? "/v1/access/requests" : "/v1/approvals";
      await post(`${base}/${encodeURIComponent(r.id)}/${vote}`, reason.trim() === "" ? {} : { reason: reason.trim() }, S.approvalList.partial().loose());
      setDone(vote === "approve" ? "approved" : "denied");
      setError(undefined);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const left = new Date(r.expiresAt).getTime() - Date.now();
  return (
    <article className={`card${focus ? " focus" : ""}`} id={`approval-${r.id}`} data-id={r.id}>
      <header>
        <div>
          <b>{r.requester.name}</b> {r.kind === "grant" ? "asks for access to" : "wants to run on"} <b>{r.connection}</b>
          {r.protocol === undefined ? "" : ` (${r.protocol})`}
        </div>
        <Badge kind={done ?? r.status}>{done ?? r.status}</Badge>
      </header>
      {r.statement !== undefined && <pre className="statement">{r.statement}</pre>}
      {r.params !== undefined && r.params.length > 0 && (
        <table className="params">
          <tbody>
            {r.params.map((p, i) => (
              <tr key={i}>
                <th>${i + 1}</th>
                <td className="mono">{p ?? <i>NULL</i>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <dl>
        <dt>Requester</dt>
        <dd className="mono">{r.requester.id}</dd>
        {r.rule !== undefined && (
          <>
            <dt>Rule</dt>
            <dd>
              <code>{r.rule}</code>
              {r.message === undefined ? "" : ` — ${r.message}`}
            </dd>
          </>
        )}
        {r.summary !== undefined && (
          <>
            <dt>Classification</dt>
            <dd>
              {r.summary.operations.join(", ") || "—"}
              {r.summary.relations.length === 0 ? "" : ` on ${r.summary.relations.join(", ")}`}
            </dd>
          </>
        )}
        {r.summary?.preview !== undefined && (
          <>
            <dt>Preview</dt>
            <dd>
              {r.summary.preview.status === "previewed"
                ? `would change ${r.summary.preview.affectedRows ?? 0} row(s)`
                : `${r.summary.preview.status === "failed" ? "preview failed" : "cannot preview"}: ${r.summary.preview.reason ?? ""}`}
              {(r.summary.preview.tables ?? []).map((t) => (
                <div key={t.relation} className="note">
                  {t.relation}: {[t.deleted > 0 ? `${t.deleted} deleted` : "", t.updated > 0 ? `${t.updated} updated` : "", t.inserted > 0 ? `${t.inserted} inserted` : ""].filter((x) => x !== "").join(", ")}
                </div>
              ))}
            </dd>
          </>
        )}
        {r.reason !== undefined && (
          <>
            <dt>Reason</dt>
            <dd>{r.reason}</dd>
          </>
        )}
        <dt>Votes</dt>
        <dd>
          {r.approvals ?? 0} of {r.minApprovals} from {r.approvers.join(", ") || "admin"}
          {(r.votes ?? []).map((v) => (
            <div key={v.approver.id + v.at} className="note">
              {v.approver.name} {v.vote === "approve" ? "approved" : "denied"}
              {v.reason === undefined ? "" : `: ${v.reason}`}
            </div>
          ))}
        </dd>
        <dt>Expires</dt>
        <dd>
          {when(r.expiresAt)} {r.status === "pending" && <span className="note">(in {duration(left)})</span>}
        </dd>
      </dl>
      {r.canDecide === true && done === undefined && (
        <div className="decide">
          <input aria-label="Reason" className="reason" placeholder="Reason (optional)" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={2000} />
          <button type="button" className="approve" onClick={() => void decide("approve")}>
            Approve
          </button>
          <button type="button" className="deny" onClick={() => void decide("deny")}>
            Deny
          </button>
        </div>
      )}
      <ErrorNote error={error} />
    </article>
  );
}

export function ApprovalsPage({ focus }: { focus: string | undefined }) {
  const [requests, setRequests] = useState<S.ApprovalView[]>();
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string>();
  const [focused, setFocused] = useState<S.ApprovalView>();
  useEffect(() => {
    const es = new EventSource("/v1/console/approvals/stream");
    es.addEventListener("approvals", (ev) => {
      const parsed = S.approvalList.safeParse(JSON.parse((ev as MessageEvent<string>).data));
      if (parsed.success) setRequests(parsed.data.requests);
      setLive(true);
    });
    es.onerror = () => setLive(false);
    return () => es.close();
  }, []);
  useEffect(() => {
    // A notification's link to a request that is no longer pending still shows it.
    if (focus === undefined) return;
    get(`/v1/console/approvals${query({ status: "all" })}`, S.approvalList).then(
      (l) => setFocused(l.requests.find((r) => r.id === focus)),
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    );
  }, [focus, requests]);
  const list = requests ?? [];
  const extra = focused !== undefined && !list.some((r) => r.id === focused.id) ? [focused] : [];
  return (
    <section>
      <h1>
        Approvals <span className={`live ${live ? "on" : ""}`}>{live ? "live" : "connecting…"}</span>
      </h1>
      <ErrorNote error={error} />
      {requests !== undefined && list.length === 0 && extra.length === 0 && <p className="note" id="no-approvals">Nothing is waiting for a decision.</p>}
      {[...extra, ...list].map((r) => (
        <ApprovalCard key={r.id + r.status} r={r} focus={r.id === focus} />
      ))}
    </section>
  );
}

// ---------------------------------------------------------------------------------- sessions

export function SessionsPage({ me }: { me: SignedIn }) {
  const [data, setData] = useState<S.SessionList>();
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string>();
  const [killError, setKillError] = useState<string>();
  const [, setTick] = useState(0);
  useEffect(() => {
    // The list arrives over SSE whenever it changes (a session starts, ends or is killed).
    const es = new EventSource("/v1/console/sessions/stream");
    es.addEventListener("sessions", (ev) => {
      const parsed = S.sessionList.safeParse(JSON.parse((ev as MessageEvent<string>).data));
      if (parsed.success) setData(parsed.data);
      else setError("unexpected sessions update");
      setLive(true);
    });
    es.onerror = () => setLive(false);
    // Durations of live sessions advance each second.
    const t = window.setInterval(() => setTick((n) => n + 1), 1000);
    return () => {
      es.close();
      window.clearInterval(t);
    };
  }, []);
  const kill = async (id: string): Promise<void> => {
    try {
      await post(`/v1/sessions/${encodeURIComponent(id)}/terminate`, {}, S.approvalList.partial().loose());
      setKillError(undefined);
    } catch (e) {
      setKillError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <section>
      <h1>
        Sessions <span className={`live ${live ? "on" : ""}`} id="sessions-live">{live ? "live" : "connecting…"}</span>
      </h1>
      <p className="sub">{has(me, "auditor") ? "Every session through this gateway." : "Your sessions."}</p>
      <ErrorNote error={error ?? killError} />
      <div className="table-wrap">
        <table id="sessions">
          <thead>
            <tr>
              <th>Principal</th>
              <th>Connection</th>
              <th>Started</th>
              <th>Duration</th>
              <th>Statements</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(data?.sessions ?? []).map((s) => (
              <tr key={s.id} data-id={s.id}>
                <td>{s.principal.name}</td>
                <td>
                  {s.connection} <span className="note">{s.protocol}</span>
                </td>
                <td className="nowrap">{when(s.startedAt)}</td>
                <td className="nowrap">{duration((s.endedAt === undefined ? Date.now() : new Date(s.endedAt).getTime()) - new Date(s.startedAt).getTime())}</td>
                <td>{s.statements ?? "—"}</td>
                <td>{s.live ? <Badge kind="pending">live</Badge> : <span className="note">{s.endReason ?? "ended"}</span>}</td>
                <td className="actions">
                  <a href={`#/sessions/${encodeURIComponent(s.id)}`} className={s.live ? "watch" : "replay"}>
                    {s.live ? "Watch" : "Replay"}
                  </a>
                  {s.live && has(me, "admin") && (
                    <button type="button" className="deny small" onClick={() => void kill(s.id)}>
                      Kill
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data !== undefined && data.sessions.length === 0 && <p className="note">No sessions yet.</p>}
    </section>
  );
}

// ---------------------------------------------------------------------------------- connections & policies

const changed = S.connectionList.partial().extend({ connection: S.connectionView.optional() });

export function ConnectionsPage({ me }: { me: SignedIn }) {
  const { data, error, reload } = useLoad(() => get("/v1/console/connections", S.connectionList), []);
  const [actionError, setActionError] = useState<string>();
  const [editing, setEditing] = useState<EditTarget>();
  const admin = has(me, "admin");
  const toggle = async (name: string, action: "disable" | "enable"): Promise<void> => {
    try {
      await post(`/v1/console/connections/${encodeURIComponent(name)}/${action}`, {}, changed);
      reload();
    } catch (e) {
      setActionError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <section>
      <h1>Connections</h1>
      <p className="sub">Connections from the configuration file are read-only here; secrets show as references. Changes take effect for the next session, without a restart.</p>
      <ErrorNote error={error ?? actionError} />
      <div className="table-wrap">
        <table id="connections">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Target</th>
              <th>Groups</th>
              <th>Settings</th>
              <th>Source</th>
            </tr>
          </thead>
          <tbody>
            {(data?.connections ?? []).map((c) => (
              <tr key={c.name} data-name={c.name}>
                <td>
                  <b>{c.name}</b>
                </td>
                <td>{c.type}</td>
                <td className="mono">
                  {c.host}:{c.port}
                </td>
                <td>{c.groups.join(", ")}</td>
                <td className="mono small-text">
                  {Object.entries(c.settings)
                    .map(([k, v]) => `${k}=${String(v)}`)
                    .join("  ")}
                </td>
                <td>
                  {admin && <TestConnection name={c.name} />}{" "}
                  {c.source === "config" ? (
                    <Badge kind="muted">YAML · read-only</Badge>
                  ) : (
                    <>
                      <Badge kind={c.disabled ? "denied" : "approved"}>{c.disabled ? "console · disabled" : "console"}</Badge>{" "}
                      {admin && (
                        <>
                          <button type="button" className="small conn-toggle" onClick={() => void toggle(c.name, c.disabled ? "enable" : "disable")}>
                            {c.disabled ? "Enable" : "Disable"}
                          </button>{" "}
                          <button type="button" className="small conn-edit" onClick={() => setEditing({ view: c })}>
                            Edit
                          </button>
                        </>
                      )}
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {admin && (
        <>
          <h2 id="conn-form-title">{editing === undefined ? "Register a connection" : `Change ${editing.view.name}`}</h2>
          <p className="sub">The fields are those of the configuration file's schema for the chosen type; the gateway checks them the same way.</p>
          <ConnectionForm edit={editing} onDone={reload} />
        </>
      )}
    </section>
  );
}

export function PoliciesPage({ me }: { me: SignedIn }) {
  const policies = useLoad(() => get("/v1/console/policies", S.policyList), []);
  const [editing, setEditing] = useState<string>();
  const [policyError, setPolicyError] = useState<string>();
  const admin = has(me, "admin");
  const remove = async (name: string): Promise<void> => {
    try {
      await deletePolicy(name);
      setPolicyError(undefined);
      policies.reload();
    } catch (e) {
      setPolicyError(e instanceof Error ? e.message : String(e));
    }
  };
  const consoleNames = (policies.data?.policies ?? []).filter((p) => p.source === "console").map((p) => p.name);
  const move = async (name: string, by: -1 | 1): Promise<void> => {
    const names = [...consoleNames];
    const i = names.indexOf(name);
    const j = i + by;
    if (i < 0 || j < 0 || j >= names.length) return;
    [names[i], names[j]] = [names[j] ?? name, names[i] ?? name];
    try {
      await post("/v1/console/policies/order", { names }, S.policyOrder);
      setPolicyError(undefined);
      policies.reload();
    } catch (e) {
      setPolicyError(e instanceof Error ? e.message : String(e));
    }
  };
  const connections = useLoad(() => get("/v1/console/connections", S.connectionList), []);
  const ids = useLoad(() => get("/v1/console/identities", S.identities), []);
  const [form, setForm] = useState({ connection: "", principal: "", statement: "" });
  const [result, setResult] = useState<S.TryResult>();
  const [error, setError] = useState<string>();
  const conns = connections.data?.connections ?? [];
  const principals = ["admin", ...(ids.data?.serviceAccounts ?? []).map((s) => `sa:${s.name}`)];
  const tryIt = async (e: SyntheticEvent): Promise<void> => {
    e.preventDefault();
    try {
      setResult(
        await post(
          "/v1/console/policies/try",
          { connection: form.connection || (conns[0]?.name ?? ""), principal: form.principal || (principals[1] ?? "admin"), statement: form.statement },
          S.tryResult,
        ),
      );
      setError(undefined);
    } catch (err) {
      setResult(undefined);
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section>
      <h1>Policies</h1>
      <p className="sub">
        Judged in order; the first matching deny or approval wins. Policies from the configuration file come first and are read-only here; policies saved in the console
        follow them, in the order set here (Move up / Move down), and apply to new sessions at once.
      </p>
      <h2>Try it</h2>
      <form className="try" onSubmit={(e) => void tryIt(e)}>
        <label>
          Connection
          <select id="try-connection" value={form.connection} onChange={(e) => setForm({ ...form, connection: e.target.value })}>
            {conns.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name} ({c.type})
              </option>
            ))}
          </select>
        </label>
        <label>
          Principal
          <select id="try-principal" value={form.principal || (principals[1] ?? "admin")} onChange={(e) => setForm({ ...form, principal: e.target.value })}>
            {principals.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label className="wide">
          Statement or command
          <textarea id="try-statement" rows={3} value={form.statement} onChange={(e) => setForm({ ...form, statement: e.target.value })} spellCheck={false} />
        </label>
        <button type="submit" className="primary" id="try-run">
          Evaluate
        </button>
      </form>
      <ErrorNote error={error} />
      {result !== undefined && (
        <div className={`notice result ${result.decision}`} id="try-result">
          <b>{result.decision === "hold" ? "held for approval" : result.decision}</b>
          {result.rule !== undefined && (
            <>
              {" "}
              by <code id="try-rule">{result.rule}</code>
            </>
          )}
          {result.message !== undefined && <div>{result.message}</div>}
          {result.masking.length > 0 && (
            <div id="try-masking">
              Masking:{" "}
              {result.masking.map((m) => (
                <code key={m}>{m}</code>
              ))}
            </div>
          )}
        </div>
      )}
      <h2>Rules</h2>
      <ErrorNote error={policies.error ?? policyError} />
      {(policies.data?.policies ?? []).map((p, i) => (
        <details key={p.name} className="policy" data-name={p.name} data-source={p.source ?? "config"}>
          <summary>
            <span className="note">{i + 1}.</span> <b>{p.name}</b> <Badge kind={p.action === "deny" ? "denied" : p.action === "require_approval" ? "pending" : "approved"}>{p.action}</Badge>{" "}
            <span className="note">on {p.connections.join(", ")}</span> {p.source === "console" ? <Badge kind="approved">console</Badge> : <Badge kind="muted">YAML · read-only</Badge>}
          </summary>
          <pre>{p.document}</pre>
          {admin && p.source === "console" && (
            <p className="actions">
              <button type="button" className="small policy-up" disabled={consoleNames[0] === p.name} onClick={() => void move(p.name, -1)}>
                Move up
              </button>{" "}
              <button type="button" className="small policy-down" disabled={consoleNames[consoleNames.length - 1] === p.name} onClick={() => void move(p.name, 1)}>
                Move down
              </button>{" "}
              <button type="button" className="small policy-edit" onClick={() => setEditing(p.document)}>
                Edit
              </button>{" "}
              <button type="button" className="deny small policy-delete" onClick={() => void remove(p.name)}>
                Delete
              </button>
            </p>
          )}
        </details>
      ))}
      {admin && (
        <>
          <h2>Add or change a console policy</h2>
          <PolicyEditor initial={editing} onDone={policies.reload} />
        </>
      )}
    </section>
  );
}

// ---------------------------------------------------------------------------------- audit

type AuditFilter = { principal: string; connection: string; decision: string; rule: string; type: string; from: string; to: string; text: string };

export function AuditPage() {
  const [filter, setFilter] = useState<AuditFilter>({ principal: "", connection: "", decision: "", rule: "", type: "", from: "", to: "", text: "" });
  const [applied, setApplied] = useState(filter);
  const params = (f: AuditFilter): Record<string, string | undefined> => ({
    ...f,
    from: f.from === "" ? undefined : new Date(f.from).toISOString(),
    to: f.to === "" ? undefined : new Date(f.to).toISOString(),
  });
  const { data, error } = useLoad(() => get(`/v1/console/audit${query(params(applied))}`, S.auditSearch), [applied]);
  const [verify, setVerify] = useState<z.infer<typeof S.auditVerify>>();
  const [verifyError, setVerifyError] = useState<string>();
  const field = (k: keyof AuditFilter, label: string, type = "text") => (
    <label>
      {label}
      <input id={`audit-${k}`} type={type} value={filter[k]} onChange={(e) => setFilter({ ...filter, [k]: e.target.value })} />
    </label>
  );
  return (
    <section>
      <h1>Audit</h1>
      <div className="verify">
        <button
          type="button"
          id="verify"
          onClick={() =>
            void get("/v1/audit/verify", S.auditVerify).then(
              (v) => {
                setVerify(v);
                setVerifyError(undefined);
              },
              (e: unknown) => setVerifyError(e instanceof Error ? e.message : String(e)),
            )
          }
        >
          Verify the chain
        </button>
        {verify !== undefined && (
          <span id="verify-result" className={verify.ok ? "ok" : "bad"}>
            {verify.ok ? `Intact: ${verify.records} records, last #${verify.lastSeq}` : `BROKEN at #${verify.failedSeq}: ${verify.reason} — ${verify.detail}`}
          </span>
        )}
        <ErrorNote error={verifyError} />
      </div>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filter);
        }}
      >
        {field("principal", "Principal")}
        {field("connection", "Connection")}
        <label>
          Decision
          <select id="audit-decision" value={filter.decision} onChange={(e) => setFilter({ ...filter, decision: e.target.value })}>
            <option value="">any</option>
            <option value="allow">allow</option>
            <option value="deny">deny</option>
          </select>
        </label>
        {field("rule", "Rule")}
        {field("type", "Type")}
        {field("text", "Statement contains")}
        {field("from", "From", "datetime-local")}
        {field("to", "To", "datetime-local")}
        <div className="buttons">
          <button type="submit" className="primary" id="audit-search">
            Search
          </button>
          <a className="button" id="export-jsonl" href={`/v1/console/audit${query({ ...params(applied), format: "jsonl", limit: "5000" })}`}>
            Export JSONL
          </a>
          <a className="button" id="export-csv" href={`/v1/console/audit${query({ ...params(applied), format: "csv", limit: "5000" })}`}>
            Export CSV
          </a>
        </div>
      </form>
      <ErrorNote error={error} />
      {data !== undefined && (
        <p className="note" id="audit-count">
          {data.records.length} record{data.records.length === 1 ? "" : "s"} (newest first; {data.scanned} scanned{data.truncated ? ", scan limit reached" : ""})
        </p>
      )}
      <div className="table-wrap">
        <table id="audit">
          <thead>
            <tr>
              <th>#</th>
              <th>Time</th>
              <th>Type</th>
              <th>Principal</th>
              <th>Connection</th>
              <th>Decision</th>
              <th>Rule</th>
              <th>Statement / message</th>
            </tr>
          </thead>
          <tbody>
            {(data?.records ?? []).map((r) => (
              <tr key={r.seq}>
                <td className="mono">{r.seq}</td>
                <td className="nowrap">{when(r.time)}</td>
                <td>{r.type}</td>
                <td>{r.principal?.id ?? ""}</td>
                <td>{r.connection ?? ""}</td>
                <td>{r.decision === undefined ? "" : <Badge kind={r.decision === "allow" ? "approved" : "denied"}>{r.decision}</Badge>}</td>
                <td>{r.rule ?? ""}</td>
                <td className="mono clip">{r.statement ?? r.message ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

// ---------------------------------------------------------------------------------- identities

export function IdentitiesPage({ me }: { me: SignedIn }) {
  const { data, error, reload } = useLoad(() => get("/v1/console/identities", S.identities), []);
  const [sa, setSa] = useState("");
  const [ttl, setTtl] = useState("1h");
  const [minted, setMinted] = useState<z.infer<typeof S.tokenCreated>>();
  const [actionError, setActionError] = useState<string>();
  const admin = has(me, "admin");
  const create = async (e: SyntheticEvent): Promise<void> => {
    e.preventDefault();
    try {
      setMinted(await post("/v1/tokens", { serviceAccount: sa || (data?.serviceAccounts[0]?.name ?? ""), ttl }, S.tokenCreated));
      setActionError(undefined);
      reload();
    } catch (err) {
      setActionError(err instanceof Error ? err.message : String(err));
    }
  };
  const revoke = async (id: string): Promise<void> => {
    try {
      await post(`/v1/tokens/${encodeURIComponent(id)}/revoke`, {}, S.approvalList.partial().loose());
      reload();
    } catch (err) {
      setActionError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section>
      <h1>Identities</h1>
      <ErrorNote error={error ?? actionError} />
      <h2>Service accounts</h2>
      <div className="table-wrap">
        <table id="service-accounts">
          <thead>
            <tr>
              <th>Name</th>
              <th>Groups</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {(data?.serviceAccounts ?? []).map((s) => (
              <tr key={s.name}>
                <td>
                  <b>{s.name}</b>
                </td>
                <td>{s.groups.join(", ")}</td>
                <td>{s.description ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Roles</h2>
      <dl className="facts">
        <dt>admin</dt>
        <dd>{data?.roles.admin.join(", ") || "—"}</dd>
        <dt>approver</dt>
        <dd>{data?.roles.approver.join(", ") || "—"}</dd>
        <dt>auditor</dt>
        <dd>{data?.roles.auditor.join(", ") || "—"}</dd>
      </dl>
      <h2>Tokens</h2>
      {admin && (
        <form className="inline-form" onSubmit={(e) => void create(e)}>
          <select id="token-sa" aria-label="Service account" value={sa} onChange={(e) => setSa(e.target.value)}>
            {(data?.serviceAccounts ?? []).map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
          </select>
          <input id="token-ttl" aria-label="Lifetime" value={ttl} onChange={(e) => setTtl(e.target.value)} size={6} />
          <button type="submit" className="primary" id="token-create">
            Create token
          </button>
        </form>
      )}
      {minted !== undefined && (
        <div className="notice" id="minted">
          Token for <b>{minted.serviceAccount}</b>, valid until {when(minted.expiresAt)}. Copy it now: it is not shown again.
          <textarea readOnly rows={3} value={minted.token} id="minted-token" />
        </div>
      )}
      <div className="table-wrap">
        <table id="tokens">
          <thead>
            <tr>
              <th>Id</th>
              <th>Service account</th>
              <th>Created</th>
              <th>Expires</th>
              <th>By</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(data?.tokens ?? []).map((t) => {
              const expired = new Date(t.expiresAt).getTime() < Date.now();
              return (
                <tr key={t.id} data-id={t.id}>
                  <td className="mono">{t.id}</td>
                  <td>{t.serviceAccount}</td>
                  <td className="nowrap">{when(t.createdAt)}</td>
                  <td className="nowrap">{when(t.expiresAt)}</td>
                  <td>{t.createdBy}</td>
                  <td>{t.revoked ? <Badge kind="denied">revoked</Badge> : expired ? <Badge kind="muted">expired</Badge> : <Badge kind="approved">active</Badge>}</td>
                  <td>
                    {admin && !t.revoked && !expired && (
                      <button type="button" className="deny small" onClick={() => void revoke(t.id)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export { ApiError };
