import type http from "node:http";
import type { AddressInfo } from "node:net";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { type NatsConnection, nanos, RetentionPolicy, StorageType } from "nats";

// What the fair baselines share. The tables they work on, under a schema of their own (`base`): social's migration
// (services/social/migrations/001_social.sql) and the runtime's inbox/outbox (services/runtime/src/migrate.ts),
// with the same columns, keys and indexes, so a baseline's statements cost what the service's do.
export const BASE_SCHEMA = `
  CREATE SCHEMA IF NOT EXISTS base;
  CREATE TABLE IF NOT EXISTS base.photos (photo_id text PRIMARY KEY, owner text NOT NULL, deleted_at timestamptz);
  CREATE TABLE IF NOT EXISTS base.likes (photo_id text NOT NULL, user_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (photo_id, user_id));
  CREATE TABLE IF NOT EXISTS base.comments (id text PRIMARY KEY, seq bigserial NOT NULL UNIQUE, photo_id text NOT NULL,
    author_id text NOT NULL, parent_id text REFERENCES base.comments (id) ON DELETE CASCADE, text text NOT NULL,
    idempotency_key text, created_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz, deleted_by text);
  CREATE INDEX IF NOT EXISTS comments_page ON base.comments (photo_id, seq DESC);
  CREATE UNIQUE INDEX IF NOT EXISTS comments_idempotency ON base.comments (author_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
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

/** CloudEvents HTTP/NATS binding 3.1.3.2: what a header value cannot carry is percent-encoded. */
export const encodeHeader = (value: string) =>
  value.replace(/[^\x21-\x24\x26-\x7e ]/g, (c) => encodeURIComponent(c)).replace(/^ | $/g, "%20");

/** The facts stream, as the runtime's ensureStreams creates it (services/runtime/src/nats.ts), if it is missing. */
export async function ensureStream(nc: NatsConnection, stream: string, subjectPrefix: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.info(stream).catch(() =>
    jsm.streams.add({
      name: stream,
      subjects: [`${subjectPrefix}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(7 * 24 * 3600_000),
      duplicate_window: nanos(2 * 60_000),
    }),
  );
}

/**
 * The caller's user id from `Authorization: Bearer <token>`, verified as the services verify a session token
 * (ES256/EdDSA against the issuer's key set from BENCH_JWKS, issuer, audience, sub and exp) on every call;
 * undefined for none or a bad one. `allowDev: false` refuses the dev provider's tokens, as a service without
 * SNAPMESH_DEV_AUTH does.
 */
export function tokenVerifier(opts: { allowDev: boolean }): (authorization: string | undefined) => Promise<string | undefined> {
  const keys = createLocalJWKSet(JSON.parse(process.env.BENCH_JWKS ?? '{"keys":[]}') as JSONWebKeySet);
  const issuer = process.env.SNAPMESH_JWT_ISSUER ?? "snapmesh-auth";
  return async (authorization) => {
    if (!authorization?.startsWith("Bearer ")) return undefined;
    try {
      const { payload } = await jwtVerify(authorization.slice(7), keys, {
        issuer,
        audience: "snapmesh",
        algorithms: ["ES256", "EdDSA"],
        requiredClaims: ["sub", "exp"],
      });
      return payload.prv === "dev" && !opts.allowDev ? undefined : String(payload.sub);
    } catch {
      return undefined;
    }
  };
}

/** A JSON answer with its length, as the services write theirs. */
export function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Listens on loopback (PORT, default any), prints `listening <port>`, and on SIGTERM closes and runs `close`. */
export function serveBaseline(server: http.Server, close: () => Promise<unknown>): void {
  server.keepAliveTimeout = 65_000;
  server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  process.on("SIGTERM", () => {
    server.close();
    server.closeAllConnections();
    void close().then(() => process.exit(0));
  });
}
