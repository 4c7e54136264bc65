/**
 * Log batches a cell cannot make the control plane choke on (issue 15, item
 * 8), inside workerd: a batch over MAX_LOG_BATCH_BYTES is answered with an
 * error naming the cap and keeps nothing, and the socket takes the next
 * batch. The cell's side (never building such a batch, never resending a
 * refused one) is test/security/log-flood-attacks.test.ts.
 */
import { describe, expect, it } from "vitest";
import { logBatchMessage } from "../../../shared/logs/batches";
import { MAX_LOG_BATCH_BYTES } from "../../../shared/protocol/logs";
import { appWithInstanceOn, line, nextMessage, openSocket } from "../../worker/log-fixtures";
import { api, createCell } from "../../worker/support";

describe("log batches over the cap", () => {
  it("a cell sending a batch over the byte cap (under the line cap) is refused with a clear error, keeps nothing, and the socket goes on", async () => {
    const cell = await createCell();
    const { appGuid, instanceGuid } = await appWithInstanceOn(cell.guid);
    const ship = await openSocket(`/v3/cells/${cell.guid}/apps/${appGuid}/logs`, cell.token);
    // 40 lines of 15 KiB: each under the line cap, together over the batch cap.
    const big = logBatchMessage(Array.from({ length: 40 }, (_, n) => line(instanceGuid, n, { line: "z".repeat(15 * 1024) })));
    expect(big.length).toBeGreaterThan(MAX_LOG_BATCH_BYTES);
    const refused = nextMessage(ship);
    ship.send(big);
    expect((await refused).error).toBe(`log batch refused: it is ${big.length} bytes, more than the ${MAX_LOG_BATCH_BYTES} a batch may be`);

    const ack = nextMessage(ship);
    ship.send(logBatchMessage([line(instanceGuid, 1000)]));
    expect(await ack).toEqual({ ack: 1 });
    const recent = await api("GET", `/v3/apps/${appGuid}/logs`, { token: "test-admin-token" });
    expect(recent.json.lines.map((l: { line: string }) => l.line)).toEqual(["line 1000"]);
    ship.close(1000);
  });
});
