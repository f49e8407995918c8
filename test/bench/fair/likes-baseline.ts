// The baseline for the fair likes benchmark: a bare node:http server in its own process doing the database
// work of social's like command (services/social/src/handlers/like.ts through the registry's withEffects and
// applyIn) in one transaction on a pg Pool of 10, after verifying the same ES256 session token.
// Env: DATABASE_URL (a fresh database; the tables are created here), BENCH_JWKS (the issuer's key set, JSON),
// PORT (default 0). Prints `listening <port>` once it accepts requests.
import { createHash, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import pg from "pg";

// The same tables as social's migration and the runtime's inbox/outbox, under a schema of our own.
const SCHEMA = `
  CREATE SCHEMA IF NOT EXISTS base;
  CREATE TABLE IF NOT EXISTS base.likes (photo_id text NOT NULL, user_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (photo_id, user_id));
  CREATE TABLE IF NOT EXISTS base.counters (photo_id text PRIMARY KEY,
    likes integer NOT NULL DEFAULT 0 CHECK (likes >= 0), comments integer NOT NULL DEFAULT 0 CHECK (comments >= 0));
  CREATE TABLE IF NOT EXISTS base.inbox (source text NOT NULL, id text NOT NULL, type text NOT NULL, reply jsonb,
    applied_at timestamptz NOT NULL DEFAULT now(), caller text NOT NULL DEFAULT '', PRIMARY KEY (source, id));
  CREATE INDEX IF NOT EXISTS inbox_applied_at ON base.inbox (applied_at);
  CREATE TABLE IF NOT EXISTS base.outbox (seq bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE, type text NOT NULL,
    event jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0, last_error text, claimed_until timestamptz);
  CREATE INDEX IF NOT EXISTS outbox_unsent ON base.outbox (seq) WHERE sent_at IS NULL;
  CREATE INDEX IF NOT EXISTS outbox_sent_at ON base.outbox (sent_at) WHERE sent_at IS NOT NULL;`;

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
await pool.query(SCHEMA);
const keys = createLocalJWKSet(JSON.parse(process.env.BENCH_JWKS ?? '{"keys":[]}') as JSONWebKeySet);
const ISSUER = process.env.SNAPMESH_JWT_ISSUER ?? "snapmesh-auth";
const ROUTE = /^\/v1\/photos\/([A-Za-z0-9_-]{1,128})\/like$/;

async function user(authorization: string | undefined): Promise<string | undefined> {
  if (!authorization?.startsWith("Bearer ")) return undefined;
  try {
    const { payload } = await jwtVerify(authorization.slice(7), keys, {
      issuer: ISSUER,
      audience: "snapmesh",
      algorithms: ["ES256", "EdDSA"],
      requiredClaims: ["sub", "exp"],
    });
    return String(payload.sub);
  } catch {
    return undefined;
  }
}

async function like(on: boolean, photoId: string, userId: string, idempotencyKey: string | undefined, authorization: string) {
  const type = on ? "snapmesh.social.like.set" : "snapmesh.social.like.unset";
  const source = `/snapmesh/social/rest/${createHash("sha256").update(authorization).digest("hex").slice(0, 16)}`;
  const id = idempotencyKey ? `idem-${idempotencyKey}` : randomUUID();
  const caller = createHash("sha256").update(userId).digest("hex");
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // Like the runtime: a REST call without Idempotency-Key can never arrive twice, so it claims no inbox row.
    if (idempotencyKey) {
      const claimed = await client.query(
        "INSERT INTO base.inbox (source, id, type, caller) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
        [source, id, type, caller],
      );
      if (claimed.rowCount === 0) {
        const prior = await client.query<{ reply: { data: unknown } }>(
          "SELECT reply FROM base.inbox WHERE source = $1 AND id = $2",
          [source, id],
        );
        await client.query("COMMIT");
        return prior.rows[0]?.reply.data;
      }
    }
    const changed = on
      ? await client.query("INSERT INTO base.likes (photo_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", [photoId, userId])
      : await client.query("DELETE FROM base.likes WHERE photo_id = $1 AND user_id = $2", [photoId, userId]);
    if (changed.rowCount) {
      await client.query(
        `INSERT INTO base.counters (photo_id, likes) VALUES ($1, GREATEST($2, 0))
         ON CONFLICT (photo_id) DO UPDATE SET likes = base.counters.likes + $2`,
        [photoId, on ? 1 : -1],
      );
    }
    const { rows } = await client.query<{ likes: number; comments: number; likedByMe: boolean }>(
      `SELECT coalesce(c.likes, 0) AS likes, coalesce(c.comments, 0) AS comments,
         EXISTS (SELECT 1 FROM base.likes l WHERE l.photo_id = $1 AND l.user_id = $2) AS "likedByMe"
       FROM (SELECT 1) AS one LEFT JOIN base.counters c ON c.photo_id = $1`,
      [photoId, userId],
    );
    const { likes, likedByMe } = rows[0]!;
    if (changed.rowCount) {
      const fact = {
        specversion: "1.0",
        id: randomUUID(),
        source: "/snapmesh/social",
        type: on ? "snapmesh.social.like.added" : "snapmesh.social.like.removed",
        subject: photoId,
        time: new Date().toISOString(),
        datacontenttype: "application/json",
        data: { photoId, userId, likes },
      };
      await client.query("INSERT INTO base.outbox (event_id, type, event) VALUES ($1, $2, $3)", [
        fact.id,
        fact.type,
        JSON.stringify(fact),
      ]);
    }
    const data = { photoId, likes, likedByMe };
    if (idempotencyKey) {
      const reply = { specversion: "1.0", id: randomUUID(), source: "/snapmesh/social", type: `${type}.reply`, data };
      await client.query("UPDATE base.inbox SET reply = $3 WHERE source = $1 AND id = $2", [source, id, JSON.stringify(reply)]);
    }
    await client.query("COMMIT");
    return data;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  req.resume();
  const match = ROUTE.exec(req.url ?? "");
  const method = req.method ?? "";
  if (!match || (method !== "PUT" && method !== "DELETE")) return send(res, 404, { error: { code: "not_found" } });
  const authorization = req.headers.authorization ?? "";
  const key = req.headers["idempotency-key"];
  void (async () => {
    const userId = await user(authorization);
    if (!userId) return send(res, 401, { error: { code: "unauthorized" } });
    send(res, 200, await like(method === "PUT", match[1]!, userId, typeof key === "string" ? key : undefined, authorization));
  })().catch(() => send(res, 500, { error: { code: "internal" } }));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  void pool.end().then(() => process.exit(0));
});
