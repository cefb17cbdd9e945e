/** `VisitorScorer`, the streaming scorer: a Durable Object per identified visitor, fed by
 * `POST /track` with that visitor's events as they are accepted. It keeps the visitor's 90-day
 * history in its SQLite storage (pruned by an alarm), scores it with the warehouse formula before
 * and after each batch, and when the level rises to hot or burning records a moment and publishes
 * it (moments.ts). A failed publish is retried by the alarm with backoff (2 s, 4 s … 5 min); after
 * the last attempt, or at once when Pub/Sub refuses it for good, the moment goes to the
 * dead-letter queue with its reason and the scheduled query alerts the rise instead. Falls in
 * level are left to BigQuery. */

import { DurableObject } from "cloudflare:workers";
import { type Event } from "./contract";
import { defaultIo, type Env, type Io } from "./env";
import { History, type Profile } from "./history";
import { alertRow, type Moment, publishMoment } from "./moments";
import { backoff } from "./queue";
import { Classifier, type Level, rank, score, WINDOW_MS } from "./scoring";

/** Publish attempts before a moment is dead-lettered (about 13 minutes of backoff: inside one
 * 15-minute scheduled run, after which the scheduled query is the backstop anyway). */
export const MAX_ATTEMPTS = 10;

const MOMENTS = `
CREATE TABLE IF NOT EXISTS moments (
  id        TEXT PRIMARY KEY,
  moment    TEXT NOT NULL,    -- the Moment, JSON
  published INTEGER NOT NULL, -- 1 once Pub/Sub took it; then only its alert row is owed
  attempts  INTEGER NOT NULL,
  dueAt     INTEGER NOT NULL,
  lastError TEXT
)`;

interface Owed {
  id: string;
  moment: string;
  published: number;
  attempts: number;
  dueAt: number;
}

export class VisitorScorer extends DurableObject<Env> {
  /** Clock and network; tests replace them. */
  io: Io = defaultIo;
  private opened: History | null = null;
  /** PAGE_CLASSES compiled once per instance (it cannot change while the isolate lives). */
  private classes: Classifier | null = null;
  private delivering: Promise<void> | null = null;
  /** When the alarm is set for (null: none; undefined: not read yet). */
  private alarmAt: number | null | undefined = undefined;

  /** The storage, its tables made on first use (and again after it was dropped). */
  private get history(): History {
    if (this.opened === null) {
      this.opened = new History(this.ctx.storage.sql);
      this.ctx.storage.sql.exec(MOMENTS);
    }
    return this.opened;
  }

  /** The storage's SQL, its tables made first (see `history`). */
  private get sql(): SqlStorage {
    void this.history;
    return this.ctx.storage.sql;
  }

  /** Takes a batch of this visitor's events (RPC from the Worker). */
  async ingest(visitorId: string, events: Event[]): Promise<{ added: number; level: Level; moment: string | null }> {
    const now = this.io.now();
    const result = this.accept(visitorId, events, now);
    let retry: number | null = null;
    if (result.moment !== null) {
      await this.deliver();
      // A failed first attempt is owed a retry (older moments have their alarm already).
      retry = this.nextRetry();
    }
    // The alarm must come by the time the oldest new event leaves the window (or a retry is due).
    const oldest = Math.min(...events.map((e) => e.timestamp));
    await this.wakeBy(Math.min(oldest + WINDOW_MS + 1, retry ?? Infinity));
    return result;
  }

  /** Stores the events and, if they raise the level at `now` to hot or burning, a moment. */
  accept(visitorId: string, events: Event[], now: number): { added: number; level: Level; moment: string | null } {
    this.classes ??= Classifier.parse(this.env.PAGE_CLASSES);
    const classes = this.classes;
    const before = this.history.profile(now);
    const mine = events.filter((e) => e.visitorId === visitorId);
    const added = this.history.add(mine, classes);
    const profile = added > 0 ? this.history.profile(now) : before;
    const was = score(before, now);
    const is = score(profile, now);
    if (added === 0 || rank(is.level) <= rank(was.level) || rank(is.level) < rank("hot")) {
      return { added, level: is.level, moment: null };
    }
    const moment: Moment = {
      id: `${visitorId}:${now}`,
      visitorId,
      at: now,
      level: is.level,
      previousLevel: before.lastVisitAt === null ? null : was.level,
      score: is,
      profile,
    };
    this.sql.exec(
      "INSERT OR IGNORE INTO moments (id, moment, published, attempts, dueAt) VALUES (?, ?, 0, 0, ?)",
      moment.id,
      JSON.stringify(moment),
      now,
    );
    return { added, level: is.level, moment: moment.id };
  }

  /** The counts now (tests, and the operator's curiosity). */
  profile(): Profile {
    return this.history.profile(this.io.now());
  }

  /** The score now, without events (tests, and the operator's curiosity). */
  current(): ReturnType<typeof score> & { lastVisitAt: number | null } {
    const now = this.io.now();
    const profile = this.history.profile(now);
    return { ...score(profile, now), lastVisitAt: profile.lastVisitAt };
  }

  /** Erasure: drops the visitor's history and any moment still owed; says whether there was any. */
  async forget(): Promise<boolean> {
    const had = !this.history.empty() || this.nextRetry() !== null;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.opened = null;
    this.alarmAt = null;
    return had;
  }

  override async alarm(): Promise<void> {
    this.alarmAt = null; // this alarm has fired
    await this.deliver();
    await this.schedule();
  }

  /** Publishes the moments that are due, one delivery at a time. */
  deliver(): Promise<void> {
    this.delivering ??= this.deliverDue().finally(() => {
      this.delivering = null;
    });
    return this.delivering;
  }

  private async deliverDue(): Promise<void> {
    const sql = this.sql;
    const due = sql.exec<Owed & Record<string, string | number>>("SELECT * FROM moments WHERE dueAt <= ? ORDER BY dueAt", this.io.now()).toArray();
    for (const owed of due) {
      const moment = JSON.parse(owed.moment) as Moment;
      if (!owed.published) {
        const outcome = await publishMoment(moment, this.env, this.io);
        if (!outcome.ok) {
          const attempts = owed.attempts + 1;
          if (outcome.retry && attempts < MAX_ATTEMPTS) {
            console.warn(`hot-lead moment ${moment.id}: attempt ${attempts} failed, retrying: ${outcome.error}`);
            sql.exec(
              "UPDATE moments SET attempts = ?, dueAt = ?, lastError = ? WHERE id = ?",
              attempts,
              this.io.now() + backoff(attempts) * 1000,
              outcome.error,
              moment.id,
            );
          } else {
            const why = outcome.retry ? `gave up after ${attempts} attempts: ${outcome.error}` : outcome.error;
            await this.env.DEAD_LETTERS.send({ kind: "hot_lead_moment", id: moment.id, moment, error: why }, { contentType: "json" });
            console.error(`hot-lead moment ${moment.id} dead-lettered: ${why}`);
            sql.exec("DELETE FROM moments WHERE id = ?", moment.id);
          }
          continue;
        }
        sql.exec("UPDATE moments SET published = 1 WHERE id = ?", moment.id);
      }
      try {
        await this.env.EVENTS_QUEUE.send(alertRow(moment), { contentType: "json" });
        sql.exec("DELETE FROM moments WHERE id = ?", moment.id);
      } catch (e) {
        console.warn(`hot-lead moment ${moment.id}: alert row not queued yet: ${(e as Error).message}`);
        sql.exec("UPDATE moments SET dueAt = ? WHERE id = ?", this.io.now() + 2000, moment.id);
      }
    }
  }

  /** The earliest retry owed, if any. */
  private nextRetry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT MIN(dueAt) AS at FROM moments").one().at;
  }

  /** Makes sure the alarm fires by `at` (one storage write only when it has to move earlier). */
  private async wakeBy(at: number): Promise<void> {
    if (!Number.isFinite(at)) return;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = Math.max(this.io.now(), at);
    await this.ctx.storage.setAlarm(this.alarmAt);
  }

  /** Prunes, then sets the alarm for the next retry or prune; drops the storage once nothing
   * is kept. */
  private async schedule(): Promise<void> {
    const history = this.history;
    const prune = history.prune(this.io.now());
    const next = [prune, this.nextRetry()].filter((t): t is number => t !== null);
    if (next.length > 0) {
      await this.wakeBy(Math.min(...next));
    } else if (history.empty()) {
      // Nothing left in the window and nothing owed: the object keeps no storage at all.
      await this.ctx.storage.deleteAll();
      this.opened = null;
      this.alarmAt = null;
    }
  }
}
