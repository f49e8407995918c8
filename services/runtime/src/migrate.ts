import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Database } from "./db.js";

export interface Migration {
  name: string;
  sql: string;
}

const RUNTIME_MIGRATIONS = (schema: string): Migration[] => [
  {
    name: "000_runtime_inbox_outbox",
    sql: `
      CREATE TABLE IF NOT EXISTS ${schema}.inbox (
        source text NOT NULL,
        id text NOT NULL,
        type text NOT NULL,
        reply jsonb,
        applied_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source, id)
      );
      CREATE TABLE IF NOT EXISTS ${schema}.outbox (
        seq bigserial PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        type text NOT NULL,
        event jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        last_error text
      );
      CREATE INDEX IF NOT EXISTS outbox_unsent ON ${schema}.outbox (seq) WHERE sent_at IS NULL;`,
  },
  {
    // Who caused an applied event: its stored reply goes back only to the same caller.
    name: "000_runtime_inbox_caller",
    sql: `ALTER TABLE ${schema}.inbox ADD COLUMN IF NOT EXISTS caller text NOT NULL DEFAULT '';`,
  },
  {
    // The relay's lease on rows it is publishing: it holds no transaction across the publish.
    name: "000_runtime_outbox_claim",
    sql: `ALTER TABLE ${schema}.outbox ADD COLUMN IF NOT EXISTS claimed_until timestamptz;`,
  },
  {
    // Retention deletes by age in small batches: it needs to find the old rows without a scan.
    name: "000_runtime_retention_indexes",
    sql: `CREATE INDEX IF NOT EXISTS inbox_applied_at ON ${schema}.inbox (applied_at);
      CREATE INDEX IF NOT EXISTS outbox_sent_at ON ${schema}.outbox (sent_at) WHERE sent_at IS NOT NULL;`,
  },
];

/** Reads `NNN_name.sql` files from a folder, in name order. */
export async function readMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  return Promise.all(files.map(async (f) => ({ name: f.replace(/\.sql$/, ""), sql: await readFile(join(dir, f), "utf8") })));
}

/**
 * Applies the runtime's tables and then the service's migrations to `schema`, in one transaction
 * under an advisory lock so that replicas starting together apply each migration once.
 * Returns the names applied by this call.
 */
export async function migrate(db: Database, schema: string, migrations: Migration[]): Promise<string[]> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name: ${schema}`);
  const all = [...RUNTIME_MIGRATIONS(schema), ...migrations];
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`snapmesh.migrate.${schema}`]);
    await tx.exec(`CREATE SCHEMA IF NOT EXISTS ${schema};
      CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
        name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());`);
    const done = new Set(
      (await tx.query<{ name: string }>(`SELECT name FROM ${schema}.schema_migrations`)).rows.map((r) => r.name),
    );
    const applied: string[] = [];
    for (const m of all) {
      if (done.has(m.name)) continue;
      await tx.exec(m.sql);
      await tx.query(`INSERT INTO ${schema}.schema_migrations (name) VALUES ($1)`, [m.name]);
      applied.push(m.name);
    }
    return applied;
  });
}
