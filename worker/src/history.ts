/** One visitor's 90-day history in its Durable Object's SQLite storage: the events the formula
 * reads (one row each, a repeated event id kept once), each session's span and deepest scroll,
 * and the counts the formula takes at a given `now` — the same definitions as the warehouse SQL
 * (docs/scoring.md, "What counts"). */

import { type Event } from "./contract";
import { type Classifier, type Counts, WINDOW_MS } from "./scoring";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  eventId      TEXT PRIMARY KEY,
  sessionId    TEXT NOT NULL,
  type         TEXT NOT NULL,
  timestamp    INTEGER NOT NULL,
  classRank    INTEGER,  -- pageviews: 1 pricing, 2 case study, 3 product
  activeMs     INTEGER,  -- page_exit
  depth        INTEGER,  -- scroll_depth
  videoSrc     TEXT,     -- video_play
  videoPercent INTEGER,  -- video_play
  page         TEXT,     -- pageviews: url, else path
  path         TEXT      -- pageviews
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (timestamp);
CREATE TABLE IF NOT EXISTS sessions (
  sessionId TEXT PRIMARY KEY,
  startedAt INTEGER NOT NULL,
  endedAt   INTEGER NOT NULL,
  maxDepth  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_end ON sessions (endedAt);
`;

/** Counts plus what a hot-lead message carries about the lead. */
export interface Profile extends Counts {
  maxScrollDepth: number;
  lastPageUrl: string | null;
  /** The most viewed pages of the window, at most 5 (views, then path). */
  topPages: { path: string; views: number }[];
}

/** `CAST(json_extract(data, '$.key') AS INTEGER)`: numbers truncated, numeric text parsed. */
function integer(data: Record<string, unknown> | undefined, key: string): number | null {
  const v = data?.[key];
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? Math.trunc(n) : null;
}

export class History {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(SCHEMA);
  }

  /** Records `events` (a repeated event id is kept once); returns how many were new. */
  add(events: Event[], classes: Classifier): number {
    let added = 0;
    for (const e of events) {
      const data = e.data;
      const inserted = this.sql.exec(
        `INSERT OR IGNORE INTO events (eventId, sessionId, type, timestamp, classRank, activeMs, depth, videoSrc, videoPercent, page, path)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        e.eventId,
        e.sessionId,
        e.type,
        e.timestamp,
        e.type === "pageview" ? classes.rank(e.path, data) : null,
        e.type === "page_exit" ? integer(data, "activeMs") : null,
        e.type === "scroll_depth" ? integer(data, "depth") : null,
        e.type === "video_play" ? (typeof data?.["src"] === "string" ? data["src"] : data?.["src"] == null ? null : JSON.stringify(data["src"])) : null,
        e.type === "video_play" ? integer(data, "percent") : null,
        e.type === "pageview" ? e.url || e.path : null,
        e.type === "pageview" ? e.path : null,
      ).rowsWritten;
      if (inserted === 0) continue;
      added++;
      const depth = e.type === "scroll_depth" ? (integer(data, "depth") ?? 0) : 0;
      this.sql.exec(
        `INSERT INTO sessions (sessionId, startedAt, endedAt, maxDepth) VALUES (?, ?, ?, ?)
         ON CONFLICT (sessionId) DO UPDATE SET startedAt = MIN(startedAt, excluded.startedAt),
           endedAt = MAX(endedAt, excluded.endedAt), maxDepth = MAX(maxDepth, excluded.maxDepth)`,
        e.sessionId,
        e.timestamp,
        e.timestamp,
        depth,
      );
    }
    return added;
  }

  /** The counts over the window ending at `now`. */
  profile(now: number): Profile {
    const from = now - WINDOW_MS;
    const c = this.sql
      .exec<Record<string, number | null>>(
        `SELECT MIN(timestamp) AS firstVisitAt, MAX(timestamp) AS lastVisitAt,
                COALESCE(SUM(type = 'pageview'), 0) AS pageviews, COALESCE(SUM(activeMs), 0) AS activeMs,
                COALESCE(SUM(classRank = 1), 0) AS pricing, COALESCE(SUM(classRank = 2), 0) AS caseStudies,
                COALESCE(SUM(classRank = 3), 0) AS products, COALESCE(SUM(type = 'form_submit'), 0) AS forms,
                COALESCE(MAX(depth), 0) AS maxScrollDepth
         FROM events WHERE timestamp >= ? AND timestamp <= ?`,
        from,
        now,
      )
      .one();
    const videos = this.sql
      .exec<{ n: number }>(
        `SELECT COUNT(*) AS n FROM (
           SELECT MAX(videoPercent) AS percent FROM events
           WHERE type = 'video_play' AND timestamp >= ? AND timestamp <= ? GROUP BY videoSrc)
         WHERE percent >= 90`,
        from,
        now,
      )
      .one();
    const s = this.sql
      .exec<{ sessions: number; deep: number }>(
        `SELECT COUNT(*) AS sessions, COALESCE(SUM(maxDepth >= 75), 0) AS deep
         FROM sessions WHERE endedAt >= ? AND startedAt <= ?`,
        from,
        now,
      )
      .one();
    const last = this.sql
      .exec<{ page: string | null }>(
        `SELECT page FROM events WHERE type = 'pageview' AND timestamp >= ? AND timestamp <= ?
         ORDER BY timestamp DESC, eventId DESC LIMIT 1`,
        from,
        now,
      )
      .toArray()[0];
    const topPages = this.sql
      .exec<{ path: string; views: number }>(
        `SELECT path, COUNT(*) AS views FROM events
         WHERE type = 'pageview' AND timestamp >= ? AND timestamp <= ?
         GROUP BY path ORDER BY views DESC, path LIMIT 5`,
        from,
        now,
      )
      .toArray()
      .map((r) => ({ path: r.path, views: r.views }));
    const n = (k: string) => Number(c[k] ?? 0);
    return {
      firstVisitAt: c["firstVisitAt"] ?? null,
      lastVisitAt: c["lastVisitAt"] ?? null,
      sessions: s.sessions,
      deepSessions: s.deep,
      pageviews: n("pageviews"),
      activeMs: n("activeMs"),
      pricing: n("pricing"),
      caseStudies: n("caseStudies"),
      products: n("products"),
      forms: n("forms"),
      videosCompleted: videos.n,
      maxScrollDepth: n("maxScrollDepth"),
      lastPageUrl: last?.page ?? null,
      topPages,
    };
  }

  /** Forgets what has left the window at `now`; returns when the next thing will (or null). */
  prune(now: number): number | null {
    const from = now - WINDOW_MS;
    this.sql.exec("DELETE FROM events WHERE timestamp < ?", from);
    this.sql.exec("DELETE FROM sessions WHERE endedAt < ?", from);
    const next = this.sql
      .exec<{ at: number | null }>(
        "SELECT MIN(at) AS at FROM (SELECT MIN(timestamp) AS at FROM events UNION ALL SELECT MIN(endedAt) FROM sessions)",
      )
      .one().at;
    return next === null ? null : next + WINDOW_MS + 1;
  }

  /** Whether nothing is kept (the object can drop its storage). */
  empty(): boolean {
    return this.sql.exec<{ n: number }>("SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM sessions) AS n").one().n === 0;
  }
}
