// The Agents page (issue 19): the network-resident agents connected to this gateway, from
// GET /v1/agents (admin and auditor roles), refreshed every few seconds.
import * as S from "../../src/api/console-schemas.js";
import { usePolled } from "./polled.js";
import { duration, ErrorNote, when } from "./pages.js";

const REFRESH_MS = 3000;

export function AgentsPage() {
  const { data, error } = usePolled("/v1/agents", S.agentList, REFRESH_MS);
  const agents = data?.agents;
  const groups = new Set((agents ?? []).map((a) => a.group));
  return (
    <section>
      <h1>Agents</h1>
      <p className="sub">
        Network-resident agents (<code>airlock agent</code>) carry connections whose <code>via:</code> names their group into private networks. Several agents of one group
        share the load and take over from each other.
      </p>
      <ErrorNote error={error} />
      {agents !== undefined && (
        <p className="note" id="agents-count">
          {agents.length} agent{agents.length === 1 ? "" : "s"} connected in {groups.size} group{groups.size === 1 ? "" : "s"}
        </p>
      )}
      <div className="table-wrap">
        <table id="agents">
          <thead>
            <tr>
              <th>Group</th>
              <th>Name</th>
              <th>Version</th>
              <th>Address</th>
              <th>Open streams</th>
              <th>Streams opened</th>
              <th>Connected</th>
              <th>Last seen</th>
            </tr>
          </thead>
          <tbody>
            {(agents ?? []).map((a) => (
              <tr key={a.id} data-id={a.id} data-group={a.group}>
                <td>
                  <b>{a.group}</b>
                </td>
                <td title={a.principal}>{a.name}</td>
                <td className="mono">{a.version}</td>
                <td className="mono">{a.address}</td>
                <td className="streams">{a.streams}</td>
                <td>{a.streamsOpened}</td>
                <td className="nowrap">
                  {when(a.connectedAt)} <span className="note">({duration(Date.now() - new Date(a.connectedAt).getTime())})</span>
                </td>
                <td className="nowrap last-seen">{duration(Date.now() - new Date(a.lastSeen).getTime())} ago</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {agents !== undefined && agents.length === 0 && (
        <p className="note" id="no-agents">
          No agent is connected. Start one inside the private network: <code>airlock agent --gateway URL --token TOKEN</code>.
        </p>
      )}
    </section>
  );
}
