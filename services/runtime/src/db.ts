import { mkdirSync } from "node:fs";
import pg from "pg";

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: "pg" | "pglite";
  /** `readOnly`: the transaction can change nothing (one `BEGIN READ ONLY`, no extra round trip). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: { readOnly?: boolean }): Promise<T>;
  close(): Promise<void>;
}

/** `postgres://…` opens a pg pool; `pglite://<dir>` (or `pglite://memory`) an embedded PGlite database. */
export async function openDatabase(url: string, options: { poolSize?: number } = {}): Promise<Database> {
  if (url.startsWith("pglite://")) return openPglite(url.slice("pglite://".length));
  return openPg(url, options.poolSize ?? 10);
}

function openPg(url: string, max: number): Database {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 30_000 });
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  const wrap = (client: pg.Pool | pg.PoolClient): Queryable => ({
    async query<R>(sql: string, params?: unknown[]) {
      const res = await client.query(sql, params as unknown[]);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    },
    async exec(sql: string) {
      await client.query(sql);
    },
  });
  return {
    kind: "pg",
    ...wrap(pool),
    async transaction(fn, options) {
      const client = await pool.connect();
      try {
        await client.query(options?.readOnly ? "BEGIN READ ONLY" : "BEGIN");
        const result = await fn(wrap(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function openPglite(location: string): Promise<Database> {
  const { PGlite } = await import("@electric-sql/pglite");
  const inMemory = location === "" || location === "memory";
  if (!inMemory) mkdirSync(location, { recursive: true });
  const db = inMemory ? new PGlite() : new PGlite(location);
  await db.waitReady;
  type Conn = Pick<InstanceType<typeof PGlite>, "query" | "exec">;
  const wrap = (conn: Conn): Queryable => ({
    async query<R>(sql: string, params?: unknown[]) {
      const res = await conn.query<R>(sql, params);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(sql: string) {
      await conn.exec(sql);
    },
  });
  return {
    kind: "pglite",
    ...wrap(db),
    transaction: (fn, options) =>
      db.transaction(async (tx) => {
        if (options?.readOnly) await tx.query("SET TRANSACTION READ ONLY");
        return fn(wrap(tx));
      }),
    close: () => db.close(),
  };
}
