// Run-time changes from the console: the policy editor (console policies, layered after the
// YAML's) and the "test connection" button. The server validates everything (the YAML's own
// schema); these forms only send text and show the answer.
import { useState, type SyntheticEvent } from "react";
import * as S from "../../src/api/console-schemas.js";
import { post } from "./api.js";

const EXAMPLE = `name: no-deletes-on-orders
connections: [orders]
match: { operations: [delete] }
action: deny
message: deletes are not allowed here`;

const deleted = S.policySaved.partial().extend({ deleted: S.policySaved.shape.policy.shape.name.optional() });

/** Create or replace a console policy from YAML; `initial` fills the editor (Edit on a console policy). */
export function PolicyEditor({ initial, onDone }: { initial: string | undefined; onDone: () => void }) {
  const [text, setText] = useState(initial ?? EXAMPLE);
  const [error, setError] = useState<string>();
  const [saved, setSaved] = useState<string>();
  const [seen, setSeen] = useState(initial);
  if (initial !== seen) {
    setSeen(initial);
    if (initial !== undefined) setText(initial);
  }
  const save = async (e: SyntheticEvent): Promise<void> => {
    e.preventDefault();
    try {
      const r = await post("/v1/console/policies", { document: text }, S.policySaved);
      setError(undefined);
      setSaved(`saved ${r.policy.name} (${r.policy.action}): it applies to new sessions`);
      onDone();
    } catch (err) {
      setSaved(undefined);
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <form className="try" id="policy-editor" onSubmit={(e) => void save(e)}>
      <label className="wide">
        Policy (YAML, as one entry under policies:)
        <textarea id="policy-document" rows={8} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      </label>
      <button type="submit" className="primary" id="policy-save">
        Save policy
      </button>
      {saved !== undefined && (
        <p className="note" id="policy-saved">
          {saved}
        </p>
      )}
      {error !== undefined && (
        <div className="notice error" role="alert" id="policy-error">
          {error}
        </div>
      )}
    </form>
  );
}

export async function deletePolicy(name: string): Promise<void> {
  await post(`/v1/console/policies/${encodeURIComponent(name)}/delete`, {}, deleted);
}

/** "Test connection": the gateway logs in to the target with the credential it holds. */
export function TestConnection({ name }: { name: string }) {
  const [result, setResult] = useState<S.ConnectionTestResult>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const run = async (): Promise<void> => {
    setBusy(true);
    try {
      setResult(await post(`/v1/console/connections/${encodeURIComponent(name)}/test`, {}, S.connectionTestResult));
      setError(undefined);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="test-connection">
      <button type="button" className="small conn-test" disabled={busy} onClick={() => void run()}>
        {busy ? "Testing…" : "Test"}
      </button>
      {result !== undefined && (
        <span className={`conn-test-result ${result.ok ? "ok" : "failed"}`} title={result.code ?? ""}>
          {result.ok ? "ok" : "failed"}: {result.message}
        </span>
      )}
      {error !== undefined && <span className="conn-test-result failed">{error}</span>}
    </span>
  );
}
