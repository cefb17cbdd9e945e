/** The intent score, in the same integer arithmetic, page classes and rounding as the warehouse
 * SQL (the `2_lead_profiles.sql` of `sql/bigquery` and `sql/sqlite`, docs/scoring.md): the streaming scorer's formula. The
 * workerd tests hold it to `sql/tests/fixture.json`, the fixture both SQL dialects are tested
 * against, visitor by visitor. */

export type Level = "cold" | "warm" | "hot" | "burning";

/** The scoring window: an event exactly 90 days old still counts. */
export const WINDOW_MS = 90 * 86_400_000;

/** Page classes in precedence order (the first that matches wins), as their rank in the SQL. */
export const CLASSES = ["pricing", "case_study", "product"] as const;
export type PageClass = (typeof CLASSES)[number];

/** `pageClass → LIKE patterns`, the shape of `[scoring.page_classes]` and of the Worker's
 * `PAGE_CLASSES` variable; the defaults are those of `page_classes.sql`. */
export type PageClasses = Partial<Record<PageClass, string[]>>;

export const DEFAULT_PAGE_CLASSES: PageClasses = {
  pricing: ["/pricing%", "/plans%"],
  case_study: ["/case-studies%", "/customers%"],
  product: ["/product%", "/features%"],
};

/** Compiled page classes: a path's class rank (1 pricing, 2 case study, 3 product). */
export class Classifier {
  private readonly rules: { rank: number; pattern: RegExp }[];

  constructor(classes: PageClasses) {
    this.rules = CLASSES.flatMap((name, i) => (classes[name] ?? []).map((p) => ({ rank: i + 1, pattern: like(p) })));
  }

  /** `PAGE_CLASSES` (JSON) or the defaults; a malformed value is an error that names it. */
  static parse(text: string | undefined): Classifier {
    if (!text) return new Classifier(DEFAULT_PAGE_CLASSES);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new Error(`PAGE_CLASSES is not JSON: ${(e as Error).message}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error('PAGE_CLASSES must be an object like {"pricing": ["/pricing%"]}');
    }
    for (const [name, patterns] of Object.entries(value)) {
      if (!(CLASSES as readonly string[]).includes(name)) {
        throw new Error(`PAGE_CLASSES: unknown class "${name}" (pricing, case_study or product)`);
      }
      if (!Array.isArray(patterns) || patterns.some((p) => typeof p !== "string")) {
        throw new Error(`PAGE_CLASSES.${name} must be a list of LIKE patterns`);
      }
    }
    return new Classifier(value as PageClasses);
  }

  /** The class rank of a pageview: the class the site set on it wins, else the patterns. */
  rank(path: string, data: Record<string, unknown> | undefined): number | null {
    const set = CLASSES.indexOf(data?.["pageClass"] as PageClass);
    if (set >= 0) return set + 1;
    let best: number | null = null;
    for (const rule of this.rules) {
      if ((best === null || rule.rank < best) && rule.pattern.test(path)) best = rule.rank;
    }
    return best;
  }
}

/** A SQL `LIKE` pattern as an anchored regular expression: `%` any run, `_` one character,
 * `\` escapes the next one; case-sensitive, as in BigQuery. */
export function like(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "\\" && i + 1 < pattern.length) source += escape(pattern[++i] as string);
    else if (c === "%") source += "[\\s\\S]*";
    else if (c === "_") source += "[\\s\\S]";
    else source += escape(c);
  }
  return new RegExp(`^${source}$`, "u");
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** What the formula reads, over the window ending at `now`. */
export interface Counts {
  firstVisitAt: number | null;
  lastVisitAt: number | null;
  sessions: number;
  /** Sessions whose deepest scroll is at least 75 %. */
  deepSessions: number;
  pageviews: number;
  activeMs: number;
  pricing: number;
  caseStudies: number;
  products: number;
  forms: number;
  videosCompleted: number;
}

export interface Score {
  intentScore: number;
  level: Level;
  recency: number;
  frequency: number;
  /** Engagement in milliseconds of points (× 60,000), capped at 1,500,000. */
  engagementMs: number;
  /** Engagement in points to a tenth, half up (the `scoreEngagement` column). */
  engagement: number;
  highIntent: number;
  conversions: number;
}

const BANDS: [number, number][] = [
  [86_400_000, 30],
  [259_200_000, 25],
  [604_800_000, 20],
  [1_209_600_000, 15],
  [2_592_000_000, 10],
];

export function recency(nowMs: number, lastVisitAt: number | null): number {
  if (lastVisitAt === null) return 0;
  const age = nowMs - lastVisitAt;
  for (const [band, points] of BANDS) if (age <= band) return points;
  return 5;
}

export function score(c: Counts, nowMs: number): Score {
  const r = recency(nowMs, c.lastVisitAt);
  const frequency = Math.min(20, 4 * c.sessions);
  const engagementMs = Math.min(1_500_000, 90_000 * c.pageviews + c.activeMs + 120_000 * c.deepSessions);
  const highIntent = Math.min(25, 8 * c.pricing + 5 * c.caseStudies + 4 * c.products);
  const conversions = Math.min(20, 15 * c.forms + 5 * c.videosCompleted);
  // Integer division of non-negative integers: half up, exactly as both SQL dialects.
  const intentScore = Math.min(
    100,
    Math.floor((60_000 * (r + frequency + highIntent + conversions) + engagementMs + 30_000) / 60_000),
  );
  const engagement = Math.floor((engagementMs + 3_000) / 6_000) / 10;
  return { intentScore, level: levelOf(intentScore), recency: r, frequency, engagementMs, engagement, highIntent, conversions };
}

export function levelOf(intentScore: number): Level {
  if (intentScore >= 80) return "burning";
  if (intentScore >= 60) return "hot";
  if (intentScore >= 40) return "warm";
  return "cold";
}

/** cold 1 … burning 4, the order the SQL compares levels in. */
export function rank(level: Level): number {
  return { cold: 1, warm: 2, hot: 3, burning: 4 }[level];
}
