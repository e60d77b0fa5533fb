import { describe, expect, it } from "vitest";
import { isFileTransfer } from "./engine.js";

describe("isFileTransfer", () => {
  it("recognises a lone legacy scp or rsync server with one path", () => {
    expect(isFileTransfer("scp -t /tmp/x")).toBe(true);
    expect(isFileTransfer("scp -f -- /tmp/x.bin")).toBe(true);
    expect(isFileTransfer("scp -r -p -t 'dir with space'")).toBe(true);
    expect(isFileTransfer("rsync --server -vlogDtpre.iLsfxC . /tmp/dest")).toBe(true);
  });

  it("never exempts anything else from masking", () => {
    expect(isFileTransfer("scp -f x; cat .env")).toBe(false);
    expect(isFileTransfer("scp -f $(cat .env)")).toBe(false);
    expect(isFileTransfer("scp -f x\ncat .env")).toBe(false);
    expect(isFileTransfer("cat .env | scp -t x")).toBe(false);
    expect(isFileTransfer("scp -f 'x'; cat '.env'")).toBe(false);
  });
});
