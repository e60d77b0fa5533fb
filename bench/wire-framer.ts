/**
 * Microbenchmark for the PostgreSQL FrameReader (not a test): frames 1,000,000 small messages
 * delivered in socket-sized chunks and prints messages/second.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/wire-framer.js [messages] [chunkBytes]
 *
 * The stream mixes what a proxy sees most: short DataRows, CommandComplete, ReadyForQuery,
 * and Bind/Execute/Sync from the client side. Chunks are cut at fixed offsets, so most chunk
 * boundaries fall inside a message and exercise the copying path too.
 */
import { FrameReader } from "../src/protocols/postgres/wire/framer.js";
import { encodeCommandComplete, encodeDataRow, encodeReadyForQuery } from "../src/protocols/postgres/wire/backend.js";
import { encodeBind, encodeExecute, encodeSync } from "../src/protocols/postgres/wire/frontend.js";

const total = Number(process.argv[2] ?? 1_000_000);
const chunkBytes = Number(process.argv[3] ?? 65_536);

const pattern = [
  encodeBind({ statement: "s1", params: [Buffer.from("42")] }),
  encodeExecute(),
  encodeSync(),
  encodeDataRow([Buffer.from("1"), Buffer.from("alice"), Buffer.from("alice@example.com")]),
  encodeDataRow([Buffer.from("2"), null, Buffer.from("bob@example.com")]),
  encodeCommandComplete("SELECT 2"),
  encodeReadyForQuery("I"),
];

const messages: Buffer[] = [];
for (let i = 0; i < total; i++) messages.push(pattern[i % pattern.length]!);
const stream = Buffer.concat(messages);
const chunks: Buffer[] = [];
for (let off = 0; off < stream.length; off += chunkBytes) chunks.push(stream.subarray(off, off + chunkBytes));

function run(readBody: boolean): { seconds: number; frames: number } {
  const reader = new FrameReader({ maxMessageBytes: 1 << 20 });
  let frames = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let f = reader.next(); f !== undefined; f = reader.next()) {
      frames++;
      sink += readBody ? f.body.length + f.type : f.bytes.length;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (frames !== total || sink === 0) throw new Error(`framed ${frames} of ${total} messages`);
  return { seconds, frames };
}

const averageSize = stream.length / total;
console.log(`${total} messages, ${(stream.length / 1048576).toFixed(1)} MiB (avg ${averageSize.toFixed(1)} B), ${chunks.length} chunks of ${chunkBytes} B`);
for (const readBody of [false, true]) {
  run(readBody); // warm-up
  const runs = [run(readBody), run(readBody), run(readBody)].map((r) => r.seconds).sort((a, b) => a - b);
  const median = runs[1]!;
  console.log(
    `${readBody ? "type+body " : "bytes only"}: ${Math.round(total / median).toLocaleString("en-US")} messages/s, ` +
      `${(stream.length / 1048576 / median).toFixed(0)} MiB/s (median of 3; best ${Math.round(total / runs[0]!).toLocaleString("en-US")}/s)`,
  );
}
