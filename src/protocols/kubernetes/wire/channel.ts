/**
 * The Kubernetes remote-command channel protocol over WebSocket (`v4.channel.k8s.io`,
 * `v5.channel.k8s.io`; k8s.io/apimachinery/pkg/util/remotecommand/constants.go and
 * k8s.io/apiserver/pkg/util/wsstream/conn.go): every binary message is one channel byte
 * followed by that channel's payload. Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (a JSON
 * `Status` when the command ends), 4 resize (JSON `{"Width":…,"Height":…}`), and in v5 only
 * 255 close (payload: the channel byte being closed, half-close of stdin).
 *
 * Pure: no I/O. Bounded: a message longer than MAX_CHANNEL_MESSAGE is refused.
 */
import { GatewayError } from "../../../core/errors.js";

export const CHANNEL_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"] as const;
export type ChannelProtocol = (typeof CHANNEL_PROTOCOLS)[number];

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;
export const CLOSE = 255;

/** The largest channel message relayed (kubelet's streams write far smaller frames). */
export const MAX_CHANNEL_MESSAGE = 1024 * 1024;

export type ChannelMessage =
  | { readonly type: "data"; readonly channel: typeof STDIN | typeof STDOUT | typeof STDERR | typeof ERROR; readonly payload: Buffer }
  | { readonly type: "resize"; readonly width: number; readonly height: number; readonly payload: Buffer }
  | { readonly type: "close"; readonly channel: number }
  | { readonly type: "empty" };

/** The protocol to speak: the first of the client's offers the gateway supports. */
export function chooseProtocol(offered: string | undefined): ChannelProtocol | undefined {
  const offers = (offered ?? "").split(",").map((s) => s.trim());
  for (const p of CHANNEL_PROTOCOLS) if (offers.includes(p)) return p;
  return undefined;
}

export function decodeChannelMessage(msg: Buffer, protocol: ChannelProtocol): ChannelMessage {
  if (msg.length > MAX_CHANNEL_MESSAGE) throw new GatewayError("GW_LIMIT", `a channel message is longer than ${MAX_CHANNEL_MESSAGE} bytes`);
  if (msg.length === 0) return { type: "empty" };
  const channel = msg[0] ?? 0;
  const payload = msg.subarray(1);
  switch (channel) {
    case STDIN:
    case STDOUT:
    case STDERR:
    case ERROR:
      return { type: "data", channel, payload };
    case RESIZE: {
      if (payload.length > 256) throw new GatewayError("GW_PROTOCOL", "a resize message is too long");
      let parsed: unknown;
      try {
        parsed = JSON.parse(payload.toString("utf8"));
      } catch {
        throw new GatewayError("GW_PROTOCOL", "a resize message is not JSON");
      }
      const w = typeof parsed === "object" && parsed !== null && "Width" in parsed ? parsed.Width : undefined;
      const h = typeof parsed === "object" && parsed !== null && "Height" in parsed ? parsed.Height : undefined;
      if (typeof w !== "number" || typeof h !== "number" || !Number.isInteger(w) || !Number.isInteger(h) || w < 0 || h < 0 || w > 65535 || h > 65535) {
        throw new GatewayError("GW_PROTOCOL", "a resize message needs integer Width and Height");
      }
      return { type: "resize", width: w, height: h, payload };
    }
    case CLOSE:
      if (protocol !== "v5.channel.k8s.io") throw new GatewayError("GW_PROTOCOL", "channel 255 (close) exists in v5.channel.k8s.io only");
      if (payload.length !== 1) throw new GatewayError("GW_PROTOCOL", "a close message names exactly one channel");
      return { type: "close", channel: payload[0] ?? 0 };
    default:
      throw new GatewayError("GW_PROTOCOL", `unknown channel ${channel}`);
  }
}

export function encodeChannelMessage(channel: number, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  body.copy(out, 1);
  return out;
}

/**
 * An exec command as one shell text for the shell guardrails: argv words quoted so the
 * analyser reads exactly these words (`sh -c 'rm -rf /x'` stays a wrapper with its script).
 */
export function argvToShell(argv: readonly string[]): string {
  return argv.map((a) => (a !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}
