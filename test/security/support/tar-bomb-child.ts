/**
 * An agent-sized process that unpacks one hostile layer stream with the
 * cell's limits (DEFAULT_PULL_LIMITS) and reports how it ended and the most
 * memory it held alive: JS heap plus buffers outside it, measured after a
 * full collection at every 4 MiB of the stream it generates, so the peak is
 * seen however busy the loop is and garbage not yet collected does not count;
 * and its resident set at the same points, which also counts what the native
 * extractor allocates outside V8.
 *
 * Run with node --expose-gc; argv: <bomb> <empty dir to unpack into>; prints
 * one JSON line.
 */
import { Readable } from "node:stream";
import { ImageBudget } from "../../../agent/images/image-budget";
import { DEFAULT_PULL_LIMITS } from "../../../agent/images/image-store";
import { unpackLayer } from "../../../agent/images/layer-stream";
import { tarHeaderBlock } from "../../fixtures/layers/tar";

export type Bomb = "pax-header-64mib" | "gnu-long-name-64mib" | "million-device-entries";

const MIB = 1 << 20;
const gc = (globalThis as { gc?: () => void }).gc!;
const held = () => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const baseline = held();
const rssBaseline = process.memoryUsage.rss();
let peak = baseline;
let rssPeak = rssBaseline;
let sampledAt = 0;
function sample(streamed: number): void {
  if (streamed - sampledAt < 4 * MIB) return;
  sampledAt = streamed;
  peak = Math.max(peak, held());
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
}

/** A long header announcing 64 MiB, then its body in 64 KiB chunks, made only as the parser asks. */
function* longHeader(typeflag: string, fill: Buffer): Generator<Buffer> {
  yield tarHeaderBlock(typeflag === "x" ? "PaxHeader" : "././@LongLink", typeflag, 64 * MIB);
  for (let sent = 0; sent < 64 * MIB; sent += fill.length) yield fill;
  yield tarHeaderBlock("after", "0", 0);
  yield Buffer.alloc(1024);
}

/** Empty character-device entries: the extractor writes nothing for them, so only its bookkeeping grows. */
function* deviceEntries(n: number): Generator<Buffer> {
  const batch: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    batch.push(tarHeaderBlock(`d/${String(i).padStart(7, "0")}`, "3", 0));
    if (batch.length === 128) yield Buffer.concat(batch.splice(0));
  }
  yield Buffer.concat([...batch, Buffer.alloc(1024)]);
}

function stream(bomb: Bomb): Generator<Buffer> {
  switch (bomb) {
    case "pax-header-64mib": {
      // One PAX record after another: "65536 comment=aaa…\n" is 65536 bytes long.
      const record = Buffer.alloc(64 * 1024, "a");
      record.write("65536 comment=");
      record[record.length - 1] = 0x0a;
      return longHeader("x", record);
    }
    case "gnu-long-name-64mib":
      return longHeader("L", Buffer.alloc(64 * 1024, "a"));
    case "million-device-entries":
      return deviceEntries(1_000_000);
  }
}

const [bomb, dir] = process.argv.slice(2) as [Bomb, string];
let streamed = 0;
const source = Readable.from(
  (function* () {
    for (const chunk of stream(bomb)) {
      streamed += chunk.length;
      sample(streamed);
      yield chunk;
    }
  })(),
);
const zeros = `sha256:${"0".repeat(64)}`;
const layer = { digest: zeros, diff_id: zeros, size: 2 ** 40, media_type: "application/vnd.oci.image.layer.v1.tar" };
const limits = DEFAULT_PULL_LIMITS;
let outcome: { code?: string; message: string };
try {
  const r = await unpackLayer(source, layer, dir, { ...limits, maxEntries: limits.maxLayerEntries, image: new ImageBudget(limits.image, "hostile") });
  outcome = { message: `unpacked ${r.entries} entries` };
} catch (err) {
  outcome = { code: (err as { code?: string }).code, message: (err as Error).message };
}
peak = Math.max(peak, held());
rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
process.stdout.write(JSON.stringify({ ...outcome, baselineBytes: baseline, peakBytes: peak, rssBaselineBytes: rssBaseline, rssPeakBytes: rssPeak, streamedBytes: streamed }) + "\n");
