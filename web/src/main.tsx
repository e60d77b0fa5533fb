// The Airlock web console: a single-page app served by the gateway's API listener at `/`.
// Routes are in the URL fragment (#/approvals, #/sessions/ID, …) so the server serves one page.
import { StrictMode, useCallback, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import * as S from "../../src/api/console-schemas.js";
import { get, post, setCsrf } from "./api.js";
import { ApprovalsPage, AuditPage, ConnectionsPage, ErrorNote, has, IdentitiesPage, LoginPage, PoliciesPage, SessionsPage } from "./pages.js";
import { SessionPage } from "./session.js";
import { AgentsPage } from "./agents.js";
import { BudgetsPage } from "./budgets.js";
import "./style.css";

type SignedIn = Extract<S.ConsoleSession, { signedIn: true }>;
type Role = SignedIn["roles"][number];

interface NavItem {
  readonly path: string;
  readonly label: string;
  readonly role: Role;
}

const NAV: readonly NavItem[] = [
  { path: "approvals", label: "Approvals", role: "user" },
  { path: "sessions", label: "Sessions", role: "user" },
  { path: "connections", label: "Connections", role: "user" },
  { path: "policies", label: "Policies", role: "auditor" },
  { path: "audit", label: "Audit", role: "auditor" },
  { path: "identities", label: "Identities", role: "auditor" },
  { path: "agents", label: "Agents", role: "auditor" },
  { path: "budgets", label: "Budgets", role: "user" },
];

function useHash(): string {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const on = (): void => setHash(window.location.hash);
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function Page({ me, parts }: { me: SignedIn; parts: readonly string[] }) {
  const [first, second] = parts;
  switch (first) {
    case "sessions":
      return second === undefined ? <SessionsPage me={me} /> : <SessionPage id={decodeURIComponent(second)} me={me} />;
    case "connections":
      return <ConnectionsPage me={me} />;
    case "policies":
      return has(me, "auditor") ? <PoliciesPage me={me} /> : <Forbidden />;
    case "audit":
      return has(me, "auditor") ? <AuditPage /> : <Forbidden />;
    case "identities":
      return has(me, "auditor") ? <IdentitiesPage me={me} /> : <Forbidden />;
    case "agents":
      return has(me, "auditor") ? <AgentsPage /> : <Forbidden />;
    case "budgets":
      return <BudgetsPage />;
    case "approvals":
    case undefined:
      return <ApprovalsPage focus={first === "approvals" && second !== undefined ? decodeURIComponent(second) : undefined} />;
    default:
      return <ErrorNote error={`No page ${first}`} />;
  }
}

function Forbidden() {
  return <ErrorNote error="Your roles do not include this page." />;
}

function App() {
  const [session, setSession] = useState<S.ConsoleSession>();
  const [error, setError] = useState<string>();
  const hash = useHash();
  const load = useCallback(() => {
    get("/v1/console/session", S.consoleSession).then(
      (s) => {
        if (s.signedIn) setCsrf(s.csrf);
        setSession(s);
      },
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    );
  }, []);
  useEffect(load, [load]);
  if (session === undefined) return <main className="login">{error === undefined ? <p className="note">Loading…</p> : <ErrorNote error={error} />}</main>;
  if (!session.signedIn) return <LoginPage oidc={session.oidc} onSignedIn={load} failed={hash === "#/login-failed"} />;
  const me = session;
  const parts = hash.replace(/^#\/?/u, "").split("?")[0]?.split("/").filter((p) => p !== "") ?? [];
  const current = parts[0] ?? "approvals";
  const logout = (): void => {
    void post("/v1/console/logout", {}, S.consoleSession.or(S.errorBody).or(S.loginBody.partial())).finally(() => {
      window.location.hash = "";
      load();
    });
  };
  return (
    <>
      <header className="top">
        <a className="brand" href="#/approvals">
          Airlock
        </a>
        <nav>
          {NAV.filter((n) => has(me, n.role)).map((n) => (
            <a key={n.path} href={`#/${n.path}`} className={current === n.path ? "active" : ""} id={`nav-${n.path}`}>
              {n.label}
            </a>
          ))}
        </nav>
        <div className="me">
          <span id="me" title={me.principal.id}>
            {me.principal.name}
          </span>{" "}
          <span className="note" id="roles">
            {me.roles.filter((r) => r !== "user").join(", ") || "user"}
          </span>
          <button type="button" className="small" id="logout" onClick={logout}>
            Sign out
          </button>
        </div>
      </header>
      <main className="content">
        <Page me={me} parts={parts} />
      </main>
    </>
  );
}

const root = document.getElementById("root");
if (root !== null) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
