/**
 * The agent's own allowlist of targets (issue 19): which host:port pairs a network-resident agent
 * will dial for the gateway. It is enforced on the agent, so a compromised or misconfigured
 * gateway cannot use the agent to reach anything else in the private network.
 *
 * Entries are `HOST:PORT`:
 *   - HOST: a DNS name (`db.internal`, case-insensitive, exact), a wildcard `*.internal` (any name
 *     under it), an IPv4 address or CIDR (`10.0.0.0/8`), an IPv6 address or CIDR in brackets
 *     (`[fd00::/8]`), or `*` (any host);
 *   - PORT: a number or `*` (any port).
 * An address or CIDR entry also admits a name the agent resolves into it: the agent resolves the
 * name once, checks the address and dials that same address (no second look-up to race).
 *
 * Without `allow`, the agent dials only the targets the gateway announced when the tunnel opened
 * (the host:port of the connections that name the agent's group): exact host and port.
 */
import { BlockList, isIP } from "node:net";

type HostRule =
  | { readonly kind: "any" }
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "suffix"; readonly suffix: string }
  | { readonly kind: "net"; readonly list: BlockList };

export interface AllowRule {
  readonly text: string;
  readonly host: HostRule;
  /** undefined = any port. */
  readonly port: number | undefined;
}

const NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function normName(host: string): string {
  return host.toLowerCase().replace(/\.$/, "");
}

function netRule(addr: string, prefix: string | undefined, text: string): HostRule {
  const family = isIP(addr);
  if (family === 0) throw new Error(`allow "${text}": "${addr}" is not an IP address`);
  const type = family === 4 ? "ipv4" : "ipv6";
  const list = new BlockList();
  if (prefix === undefined) list.addAddress(addr, type);
  else {
    const bits = Number(prefix);
    if (!/^\d{1,3}$/.test(prefix) || bits > (family === 4 ? 32 : 128)) throw new Error(`allow "${text}": bad prefix length /${prefix}`);
    list.addSubnet(addr, bits, type);
  }
  return { kind: "net", list };
}

/** Parses one entry; throws an Error naming the entry when it is malformed. */
export function parseAllowRule(text: string): AllowRule {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\*|\d{1,5})$/.exec(text.trim());
  if (m?.[1] === undefined || m[2] === undefined) throw new Error(`allow "${text}": expected HOST:PORT (e.g. 10.0.0.0/8:5432, db.internal:*, [fd00::/8]:22)`);
  const hostText = m[1];
  const port = m[2] === "*" ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new Error(`allow "${text}": port out of range`);
  let host: HostRule;
  if (hostText === "*") host = { kind: "any" };
  else if (hostText.startsWith("[")) {
    const [addr, prefix] = hostText.slice(1, -1).split("/", 2);
    host = netRule(addr ?? "", prefix, text);
    if (isIP(addr ?? "") !== 6) throw new Error(`allow "${text}": brackets are for IPv6 addresses`);
  } else if (/^[\d.]+(\/\d+)?$/.test(hostText)) {
    const [addr, prefix] = hostText.split("/", 2);
    host = netRule(addr ?? "", prefix, text);
  } else if (hostText.startsWith("*.") && NAME.test(normName(hostText.slice(2)))) host = { kind: "suffix", suffix: `.${normName(hostText.slice(2))}` };
  else if (NAME.test(normName(hostText))) host = { kind: "name", name: normName(hostText) };
  else throw new Error(`allow "${text}": "${hostText}" is not a host name, address or CIDR`);
  return { text, host, port };
}

export function parseAllowList(entries: readonly string[]): AllowRule[] {
  return entries.map(parseAllowRule);
}

function hostMatches(rule: HostRule, name: string, address: string): boolean {
  switch (rule.kind) {
    case "any":
      return true;
    case "name":
      return name === rule.name;
    case "suffix":
      return name.endsWith(rule.suffix);
    case "net": {
      const family = isIP(address);
      return family !== 0 && rule.list.check(address, family === 4 ? "ipv4" : "ipv6");
    }
  }
}

/**
 * Whether `rules` admit dialing `host:port` at `address` (the address the agent resolved `host`
 * to, or `host` itself when it is an IP). Returns the rule that admits it, or undefined.
 */
export function allowedBy(rules: readonly AllowRule[], host: string, port: number, address: string): AllowRule | undefined {
  const name = normName(host);
  return rules.find((r) => (r.port === undefined || r.port === port) && hostMatches(r.host, name, address));
}

/** The gateway's announced targets as exact rules (host name or address, and port). */
export function announcedRules(targets: readonly { readonly host: string; readonly port: number }[]): AllowRule[] {
  return targets.map((t) => {
    const family = isIP(t.host);
    const host: HostRule = family === 0 ? { kind: "name", name: normName(t.host) } : netRule(t.host, undefined, `${t.host}:${t.port}`);
    return { text: `${t.host}:${t.port} (announced by the gateway)`, host, port: t.port };
  });
}
