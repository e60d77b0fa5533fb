/**
 * Tool pinning (issue 16): what an admin approved of each upstream MCP server, by fingerprint
 * (fingerprint.ts), persisted in the store (src/store/mcp-pins.ts).
 *
 * - `pinned`: the tool is as approved; it is listed and may be called (policies still judge).
 * - `changed`: its name, description or input schema differ from what was approved (tool
 *   poisoning arrives this way): hidden from tools/list, refused on call, audited once per new
 *   fingerprint, until an admin accepts it (`airlock mcp pin CONNECTION`).
 * - `new`: never approved: hidden and refused like a changed tool.
 *
 * First contact: with `pinning: admin` (the default) nothing is listed until an admin pins the
 * server; with `pinning: first-use` the first session that meets a server with no pins at all
 * pins every tool it lists then (audited as pinned by `first-use`). Changes after that always
 * need an admin.
 */
import type { Logger } from "pino";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import type { AuditEventInput } from "../../../audit/types.js";
import type { McpConnection } from "../../../core/connection.js";
import type { McpPinStore, McpToolPin } from "../../../store/mcp-pins.js";
import { toolFingerprint } from "./fingerprint.js";

export type PinState = "pinned" | "changed" | "new";

export interface ToolPinView {
  readonly name: string;
  readonly fingerprint: string;
  readonly state: PinState;
  readonly pinnedFingerprint?: string;
}

/** Distinct changed fingerprints remembered as already audited (bounded). */
const MAX_REPORTED = 10_000;

export class McpPins {
  readonly #store: McpPinStore;
  readonly #audit: (input: AuditEventInput) => Promise<void>;
  readonly #logger: Logger;
  readonly #cache = new Map<string, Promise<ReadonlyMap<string, McpToolPin>>>();
  readonly #reported = new Set<string>();

  constructor(store: McpPinStore, audit: (input: AuditEventInput) => Promise<void>, logger: Logger) {
    this.#store = store;
    this.#audit = audit;
    this.#logger = logger;
  }

  #pins(connection: string): Promise<ReadonlyMap<string, McpToolPin>> {
    let p = this.#cache.get(connection);
    if (p === undefined) {
      p = this.#store.list(connection).then((rows) => new Map(rows.map((r) => [r.tool, r])));
      p.catch(() => this.#cache.delete(connection));
      this.#cache.set(connection, p);
    }
    return p;
  }

  /** Each tool's state, pinning at first contact when the connection says so. */
  async states(c: McpConnection, tools: readonly Tool[]): Promise<ToolPinView[]> {
    let pins = await this.#pins(c.name);
    if (pins.size === 0 && c.pinning === "first-use" && tools.length > 0) {
      await this.pin(c.name, tools, "first-use");
      pins = await this.#pins(c.name);
    }
    const views = tools.map((t): ToolPinView => {
      const fingerprint = toolFingerprint(t);
      const pin = pins.get(t.name);
      const state: PinState = pin === undefined ? "new" : pin.fingerprint === fingerprint ? "pinned" : "changed";
      return { name: t.name, fingerprint, state, ...(pin === undefined ? {} : { pinnedFingerprint: pin.fingerprint }) };
    });
    for (const v of views) if (v.state === "changed") this.#reportChange(c.name, v);
    return views;
  }

  #reportChange(connection: string, v: ToolPinView): void {
    const key = `${connection}\u0000${v.name}\u0000${v.fingerprint}`;
    if (this.#reported.has(key)) return;
    if (this.#reported.size >= MAX_REPORTED) this.#reported.clear();
    this.#reported.add(key);
    this.#logger.warn({ connection, tool: v.name }, "an upstream MCP tool changed since it was pinned; hidden until an admin accepts it");
    void this.#audit({
      type: "mcp.pin",
      connection,
      decision: "deny",
      code: "GW_POLICY_DENIED",
      rule: "tool-pinning",
      message: `tool ${v.name} changed since it was pinned: hidden until an admin accepts it (airlock mcp pin ${connection})`,
      details: { action: "changed", tool: v.name, fingerprint: v.fingerprint, pinnedFingerprint: v.pinnedFingerprint ?? null },
    }).catch(() => undefined);
  }

  /**
   * Pin the tools as they are now (all of them, or only `only`; other pins are kept). Tools no
   * longer listed lose their pins when everything is pinned. Audited per tool.
   */
  async pin(connection: string, tools: readonly Tool[], by: string, only?: readonly string[]): Promise<ToolPinView[]> {
    const current = await this.#pins(connection).catch(() => new Map<string, McpToolPin>());
    const now = new Date();
    const chosen = only === undefined ? tools : tools.filter((t) => only.includes(t.name));
    const next = new Map<string, McpToolPin>(only === undefined ? [] : [...current]);
    const changes: { name: string; fingerprint: string; before?: string }[] = [];
    for (const t of chosen) {
      const fingerprint = toolFingerprint(t);
      const before = current.get(t.name)?.fingerprint;
      next.set(t.name, { connection, tool: t.name, fingerprint, pinnedAt: before === fingerprint ? (current.get(t.name)?.pinnedAt ?? now) : now, pinnedBy: before === fingerprint ? (current.get(t.name)?.pinnedBy ?? by) : by });
      if (before !== fingerprint) changes.push({ name: t.name, fingerprint, ...(before === undefined ? {} : { before }) });
    }
    this.#cache.delete(connection);
    await this.#store.replace(connection, [...next.values()]);
    for (const ch of changes) {
      await this.#audit({
        type: "mcp.pin",
        connection,
        decision: "allow",
        message: `tool ${ch.name} ${ch.before === undefined ? "pinned" : "change accepted"} by ${by}`,
        details: { action: ch.before === undefined ? "pinned" : "accepted", tool: ch.name, fingerprint: ch.fingerprint, pinnedFingerprint: ch.before ?? null, by },
      });
    }
    return tools.map((t) => {
      const fingerprint = toolFingerprint(t);
      const pin = next.get(t.name);
      return { name: t.name, fingerprint, state: pin === undefined ? "new" : pin.fingerprint === fingerprint ? "pinned" : "changed" };
    });
  }
}
