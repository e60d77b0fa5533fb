// The Budgets page (issue 21): the budget counters of the current windows, from GET /v1/budgets
// (admins and auditors see every counter; anyone else only their own), refreshed every few
// seconds. Counters are shared by every gateway on the store (src/store/budgets.ts).
import * as S from "../../src/api/console-schemas.js";
import { usePolled } from "./polled.js";
import { ErrorNote, when } from "./pages.js";

const REFRESH_MS = 3000;
const KINDS = ["rows", "bytes", "statements"] as const;

/** "used / limit (n %)" for the kinds a budget limits; what is not limited is left out. */
function usage(c: S.BudgetCounterT, kind: (typeof KINDS)[number]): string {
  const limit = c.limits[kind];
  if (limit === undefined) return "–";
  const used = c.used[kind];
  return `${used.toLocaleString()} / ${limit.toLocaleString()} (${Math.min(100, Math.round((used / limit) * 100))} %)`;
}

function spent(c: S.BudgetCounterT): boolean {
  return KINDS.some((k) => {
    const limit = c.limits[k];
    return limit !== undefined && c.used[k] >= limit;
  });
}

export function BudgetsPage() {
  const { data, error } = usePolled("/v1/budgets", S.budgetList, REFRESH_MS);
  const counters = data?.budgets;
  return (
    <section>
      <h1>Budgets</h1>
      <p className="sub">
        Rows, bytes and statements per window (<code>budgets:</code>), counted across every gateway on the store. A spent budget refuses the next statement and cuts a
        result mid-stream.
      </p>
      <ErrorNote error={error} />
      {counters !== undefined && counters.length === 0 && <p className="note" id="budgets-empty">No budget counter has been used in its current window.</p>}
      <div className="table-wrap">
        <table id="budgets">
          <thead>
            <tr>
              <th>Budget</th>
              <th>Who</th>
              <th>Connection</th>
              <th>Rows</th>
              <th>Bytes</th>
              <th>Statements</th>
              <th>Window</th>
            </tr>
          </thead>
          <tbody>
            {(counters ?? []).map((c) => (
              <tr key={`${c.budget}/${c.subject}/${c.connection}`} data-budget={c.budget} data-subject={c.subject} className={spent(c) ? "spent" : undefined}>
                <td>
                  <b>{c.budget}</b>
                  {spent(c) && <span className="badge deny"> spent</span>}
                </td>
                <td className="mono">{c.subject}</td>
                <td>{c.connection}</td>
                {KINDS.map((k) => (
                  <td key={k} className={`nowrap ${k}`}>
                    {usage(c, k)}
                  </td>
                ))}
                <td className="nowrap">
                  {when(c.windowStart)} – {when(c.windowEnd)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
