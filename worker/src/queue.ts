/** The queue consumer: batch-writes rows to BigQuery, acks what landed, retries the rest with
 * exponential backoff, and sends rows BigQuery refuses for good to the dead-letter queue. */

import { insertAll, MAX_ROWS } from "./bigquery";
import { type Env, type Io, type Row, type Table } from "./env";

/** The delay before attempt `attempts + 1`: 2, 4, 8 … seconds, at most 5 minutes. */
export function backoff(attempts: number): number {
  return Math.min(300, 2 ** Math.max(1, attempts));
}

export async function consume(batch: MessageBatch<Row>, env: Env, io: Io): Promise<void> {
  const byTable = new Map<Table, Message<Row>[]>();
  for (const message of batch.messages) {
    const table = message.body.table;
    byTable.set(table, [...(byTable.get(table) ?? []), message]);
  }
  for (const [table, messages] of byTable) {
    for (let i = 0; i < messages.length; i += MAX_ROWS) {
      const chunk = messages.slice(i, i + MAX_ROWS);
      const results = await insertAll(
        table,
        chunk.map((m) => m.body),
        env,
        io,
      );
      for (const [j, message] of chunk.entries()) {
        const result = results[j] ?? { ok: false, retry: true, error: "no result" };
        if (result.ok) {
          message.ack();
        } else if (result.retry) {
          console.warn(`retrying ${table} row ${message.body.insertId}: ${result.error}`);
          message.retry({ delaySeconds: backoff(message.attempts) });
        } else {
          await env.DEAD_LETTERS.send({ ...message.body, error: result.error }, { contentType: "json" });
          console.error(`dead-lettered ${table} row ${message.body.insertId}: ${result.error}`);
          message.ack();
        }
      }
    }
  }
}
