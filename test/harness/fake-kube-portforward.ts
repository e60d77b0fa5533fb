/**
 * The fake API server's side of `kubectl port-forward` (what the kubelet's SPDY port-forward
 * handler does, k8s.io/kubelet/pkg/cri/streaming/portforward/httpstream.go), over a byte
 * stream: a socket after `Upgrade: SPDY/3.1`, or binary WebSocket messages when tunnelled
 * (`SPDY/3.1+portforward.k8s.io`). Per forwarded connection the client opens an `error` stream
 * then a `data` stream, both with `port` and `requestID` headers; each SYN_STREAM gets a
 * SYN_REPLY; the data stream is joined to a TCP connection to the local server the test mapped
 * the pod's port to. When that connection ends: FIN on the data stream, then FIN on the error
 * stream (the client reads the error stream to its end). A port the test did not map gets its
 * message on the error stream, as the kubelet writes one. PINGs are answered.
 */
import { connect, type Socket } from "node:net";
import {
  dataFrame,
  encodeHeaderBlock,
  FLAG_FIN,
  GOAWAY,
  HeaderDeflater,
  HeaderInflater,
  parseSynStream,
  PING,
  RST_STREAM,
  SpdyFrameReader,
  SYN_STREAM,
  synReplyFrame,
} from "../../src/protocols/kubernetes/wire/spdy.js";

/** The two ends of the byte stream the SPDY session rides on. */
export interface ByteLink {
  write(b: Buffer): void;
  close(): void;
  onData(cb: (b: Buffer) => void): void;
  onClose(cb: () => void): void;
}

export interface PortForwardFact {
  readonly namespace: string;
  readonly pod: string;
  readonly port: number;
  readonly form: "spdy" | "websocket";
}

interface Pair {
  error?: number;
  data?: number;
  socket?: Socket;
  port: number;
  errorClosed: boolean;
}

export function serveSpdyPortForward(link: ByteLink, resolvePort: (port: number) => number | undefined, onStream: (port: number) => void): void {
  const reader = new SpdyFrameReader();
  const inflater = new HeaderInflater();
  const deflater = new HeaderDeflater();
  const pairs = new Map<string, Pair>();
  const byStream = new Map<number, Pair>();
  let closed = false;
  let chain = Promise.resolve();

  const finishError = (p: Pair, message?: string): void => {
    if (p.errorClosed || p.error === undefined) return;
    p.errorClosed = true;
    if (message !== undefined) link.write(dataFrame(p.error, 0, Buffer.from(message)));
    link.write(dataFrame(p.error, FLAG_FIN, Buffer.alloc(0)));
  };
  const startData = (p: Pair): void => {
    const dataId = p.data;
    if (dataId === undefined) return;
    const local = resolvePort(p.port);
    if (local === undefined) {
      finishError(p, `error forwarding port ${p.port} to pod: failed to find port ${p.port} in the pod's network namespace`);
      link.write(dataFrame(dataId, FLAG_FIN, Buffer.alloc(0)));
      return;
    }
    onStream(p.port);
    const s = connect(local, "127.0.0.1");
    p.socket = s;
    s.on("data", (d: Buffer) => {
      if (!closed) link.write(dataFrame(dataId, 0, d));
    });
    s.on("error", (e) => finishError(p, `error forwarding port ${p.port}: ${e.message}`));
    s.on("close", () => {
      if (closed) return;
      link.write(dataFrame(dataId, FLAG_FIN, Buffer.alloc(0)));
      finishError(p);
    });
  };

  const onFrames = async (chunk: Buffer): Promise<void> => {
    for (const f of reader.push(chunk)) {
      if (f.kind === "data") {
        const p = byStream.get(f.streamId);
        if (p === undefined) continue;
        if (f.streamId === p.data && p.socket !== undefined) {
          if (f.data.length > 0) p.socket.write(f.data);
          if ((f.flags & FLAG_FIN) !== 0) p.socket.end();
        }
        continue;
      }
      if (f.type === SYN_STREAM) {
        const { streamId, block } = parseSynStream(f.payload);
        const h = await inflater.inflate(block);
        link.write(synReplyFrame(streamId, deflater.compress(encodeHeaderBlock([]))));
        const requestId = h.get("requestid") ?? "";
        const port = Number(h.get("port") ?? "");
        const type = h.get("streamtype");
        const p = pairs.get(requestId) ?? { port, errorClosed: false };
        pairs.set(requestId, p);
        byStream.set(streamId, p);
        if (type === "error") p.error = streamId;
        else if (type === "data") {
          p.data = streamId;
          startData(p);
        }
      } else if (f.type === RST_STREAM) {
        const id = f.payload.readUInt32BE(0) & 0x7fffffff;
        const p = byStream.get(id);
        if (p !== undefined && id === p.data) p.socket?.destroy();
      } else if (f.type === PING) {
        link.write(f.raw);
      } else if (f.type === GOAWAY) {
        link.close();
      }
      // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (spdystream has no flow control).
    }
  };

  link.onData((b) => {
    chain = chain.then(() => onFrames(b)).catch(() => link.close());
  });
  link.onClose(() => {
    closed = true;
    inflater.close();
    for (const p of pairs.values()) p.socket?.destroy();
  });
}
