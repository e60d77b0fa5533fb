import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../core/errors.js";
import { analyzeShell } from "../../../policy/shell/analyze.js";
import { argvToShell, chooseProtocol, decodeChannelMessage, encodeChannelMessage, MAX_CHANNEL_MESSAGE } from "./channel.js";

describe("channel codec", () => {
  it("round-trips data channels", () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2, 3), fc.uint8Array({ maxLength: 300 }), (ch, bytes) => {
        const m = decodeChannelMessage(encodeChannelMessage(ch, Buffer.from(bytes)), "v5.channel.k8s.io");
        expect(m).toEqual({ type: "data", channel: ch, payload: Buffer.from(bytes) });
      }),
    );
  });

  it("reads resize and close, refuses the rest", () => {
    expect(decodeChannelMessage(encodeChannelMessage(4, '{"Width":80,"Height":24}'), "v4.channel.k8s.io")).toMatchObject({ type: "resize", width: 80, height: 24 });
    expect(decodeChannelMessage(Buffer.from([255, 0]), "v5.channel.k8s.io")).toEqual({ type: "close", channel: 0 });
    expect(() => decodeChannelMessage(Buffer.from([255, 0]), "v4.channel.k8s.io")).toThrow(GatewayError);
    expect(() => decodeChannelMessage(encodeChannelMessage(4, '{"Width":-1,"Height":24}'), "v5.channel.k8s.io")).toThrow(GatewayError);
    expect(() => decodeChannelMessage(encodeChannelMessage(4, "x"), "v5.channel.k8s.io")).toThrow(GatewayError);
    expect(() => decodeChannelMessage(Buffer.from([7, 1]), "v5.channel.k8s.io")).toThrow(GatewayError);
    expect(() => decodeChannelMessage(Buffer.alloc(MAX_CHANNEL_MESSAGE + 2), "v5.channel.k8s.io")).toThrow(GatewayError);
    expect(decodeChannelMessage(Buffer.alloc(0), "v5.channel.k8s.io")).toEqual({ type: "empty" });
  });

  it("never throws anything but a GatewayError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom("v4.channel.k8s.io" as const, "v5.channel.k8s.io" as const), (bytes, p) => {
        try {
          decodeChannelMessage(Buffer.from(bytes), p);
        } catch (e) {
          expect(e).toBeInstanceOf(GatewayError);
        }
      }),
    );
  });

  it("chooses v5, then v4, and nothing else", () => {
    expect(chooseProtocol("v4.channel.k8s.io, v5.channel.k8s.io")).toBe("v5.channel.k8s.io");
    expect(chooseProtocol("v4.channel.k8s.io")).toBe("v4.channel.k8s.io");
    expect(chooseProtocol("channel.k8s.io, base64.channel.k8s.io")).toBeUndefined();
    expect(chooseProtocol(undefined)).toBeUndefined();
  });

  it("quotes argv so the shell analyser reads exactly those words", async () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 5 }), (argv) => {
        const text = argvToShell(argv);
        expect(text.split(" ").length).toBeGreaterThanOrEqual(argv.length);
      }),
    );
    const a = await analyzeShell(argvToShell(["sh", "-c", "rm -rf /data; echo ok"]));
    expect(a.ok && a.commands.map((c) => c.name)).toEqual(expect.arrayContaining(["rm", "echo"]));
    const b = await analyzeShell(argvToShell(["echo", "$(rm -rf /)", "'x'"]));
    expect(b.ok && b.commands.map((c) => c.name)).toEqual(["echo"]);
  });
});
