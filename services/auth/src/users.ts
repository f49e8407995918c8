import { randomBytes } from "node:crypto";
import type { Queryable } from "@snapmesh/runtime";

export type Provider = "wechat" | "oidc" | "dev";

/**
 * Finds or creates the user behind a provider subject. Dev users keep the id they asked for, so local
 * stories read naturally; others get a fresh opaque id.
 */
export async function upsertUser(
  tx: Queryable,
  provider: Provider,
  subject: string,
): Promise<{ id: string; firstTime: boolean }> {
  const newId = provider === "dev" ? subject : `u_${randomBytes(12).toString("base64url")}`;
  const { rows } = await tx.query<{ id: string; inserted: boolean }>(
    `INSERT INTO auth.users (id, provider, subject) VALUES ($1, $2, $3)
     ON CONFLICT (provider, subject) DO UPDATE SET last_sign_in_at = now(), sign_ins = auth.users.sign_ins + 1
     RETURNING id, (xmax = 0) AS inserted`,
    [newId, provider, subject],
  );
  const row = rows[0]!;
  return { id: row.id, firstTime: row.inserted };
}
