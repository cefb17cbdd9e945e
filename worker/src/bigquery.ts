/** BigQuery `tabledata.insertAll`: rows with their insertId, at most 500 per request, errors
 * reported row by row. */

import { type Env, type Io, type Row, type Table } from "./env";
import { accessToken, AuthError } from "./google";

export const MAX_ROWS = 500;

/** What became of each row of one insertAll call, by index. */
export type RowResult = { ok: true } | { ok: false; retry: boolean; error: string };

export async function insertAll(table: Table, rows: Row[], env: Env, io: Io): Promise<RowResult[]> {
  let token: string;
  try {
    token = await accessToken(env, io);
  } catch (e) {
    // Even a refused key is retried: the rows wait in the queue while the secret is fixed, and
    // reach the dead-letter queue only after the queue's max_retries.
    const error = e instanceof AuthError ? e.message : `auth: ${(e as Error).message}`;
    return rows.map(() => ({ ok: false, retry: true, error }));
  }
  const base = env.BQ_BASE_URL.replace(/\/$/, "");
  const url = `${base}/bigquery/v2/projects/${env.BQ_PROJECT}/datasets/${env.BQ_DATASET}/tables/${table}/insertAll`;
  const all = (error: string, retry: boolean): RowResult[] => rows.map(() => ({ ok: false, retry, error }));
  let response: Response;
  try {
    response = await io.fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({
        skipInvalidRows: true,
        rows: rows.map((r) => ({ insertId: r.insertId, json: r.json })),
      }),
    });
  } catch (e) {
    return all(`insertAll failed: ${(e as Error).message}`, true);
  }
  const text = await response.text();
  if (!response.ok) {
    const retry = response.status === 401 || response.status === 408 || response.status === 429 || response.status >= 500;
    return all(`insertAll HTTP ${response.status}: ${text.slice(0, 300)}`, retry);
  }
  const body = JSON.parse(text || "{}") as {
    insertErrors?: { index: number; errors?: { reason?: string; message?: string }[] }[];
  };
  const results: RowResult[] = rows.map(() => ({ ok: true }));
  for (const failed of body.insertErrors ?? []) {
    const reasons = failed.errors ?? [];
    // "invalid" rows will never be accepted; "stopped", "backendError", "timeout" may be.
    const invalid = reasons.some((r) => r.reason === "invalid");
    const error = reasons.map((r) => `${r.reason ?? "error"}: ${r.message ?? ""}`).join("; ");
    results[failed.index] = { ok: false, retry: !invalid, error: error || "row refused" };
  }
  return results;
}
