// The baseline for the fair urls benchmark: a bare node:http server in its own process answering
// POST /v1/temp-urls like storage's url.sign command (services/storage/src/handlers/url-sign.ts → urls.ts
// signUrls → store.ts liveObjects, reached through the runtime's REST command door).
// What it does, per request, as storage does it: reads the JSON body and checks it (1-50 keys, each a valid
// object key; ttlSeconds an integer if given); verifies the same ES256 session token (issuer, audience,
// algorithms, sub and exp); runs the same one statement on a pg Pool of 10, outside any transaction as storage
// does (url.sign is a read-only command: services/runtime/src/registry.ts applyReadOnly) — the
// `SELECT key, owner, sha256 … WHERE key = ANY($1) AND deleted_at IS NULL`; keeps the keys the caller owns; computes the same
// HMAC-SHA256 over `GET\nkey\nsha256\nexpires` (services/storage/src/signing.ts) and answers the same
// `{ items: [{ key, url, expiresAt }] }`.
// What it leaves out (the runtime's share of the work, which the ratio measures): the router and its JSON body
// reader, the CloudEvent the request becomes (ids, hashes of the caller), zod validation of the event and of
// the reply, the reply CloudEvent, metrics, and auth's permission check (off in storage by default).
// Env: DATABASE_URL (a fresh database; its table is created here), BENCH_OBJECTS (storage.objects rows, JSON),
// BENCH_JWKS (the issuer's key set, JSON), BENCH_SIGNING_KEY (`kid:secret`), BENCH_PUBLIC_BASE (storage's
// address, so the URLs are the same), PORT (default 0). Prints `listening <port>` once it accepts requests.
import { createHmac } from "node:crypto";
import http from "node:http";
import pg from "pg";
import { send, serveBaseline, tokenVerifier } from "./baseline-common.ts";
import { seedObjects, validKey } from "./objects-table.ts";
import type { ObjectRow } from "./storage-fixture.ts";

const TTL_SECONDS = 7200; // STORAGE_URL_TTL_SECONDS's default, under STORAGE_URL_TTL_MAX_SECONDS's (7 days)
const MAX_TTL_SECONDS = 7 * 24 * 3600;

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
await seedObjects(pool, JSON.parse(process.env.BENCH_OBJECTS ?? "[]") as ObjectRow[]);
const signing = process.env.BENCH_SIGNING_KEY ?? "";
const kid = signing.slice(0, signing.indexOf(":"));
const secret = Buffer.from(signing.slice(signing.indexOf(":") + 1));
const publicBase = (process.env.BENCH_PUBLIC_BASE ?? "").replace(/\/$/, "");

const user = tokenVerifier({ allowDev: false });

const signUrls = async (keys: string[], ttlSeconds: number, userId: string) => {
  const expires = Math.floor(Date.now() / 1000) + Math.min(ttlSeconds, MAX_TTL_SECONDS);
  const { rows } = await pool.query<{ key: string; owner: string; sha256: string }>(
    "SELECT key, owner, sha256 FROM base.objects WHERE key = ANY($1) AND deleted_at IS NULL",
    [keys],
  );
  const live = new Map(rows.map((r) => [r.key, r]));
  return keys.map((key) => {
    const obj = live.get(key);
    if (!obj || obj.owner !== userId) return { key, error: { code: "object_not_found", message: `no object '${key}'` } };
    const sig = createHmac("sha256", secret).update(`GET\n${key}\n${obj.sha256}\n${expires}`).digest("base64url");
    const path = key.split("/").map(encodeURIComponent).join("/");
    return {
      key,
      url: `${publicBase}/v1/objects/${path}?v=${obj.sha256}&expires=${expires}&kid=${encodeURIComponent(kid)}&sig=${sig}`,
      expiresAt: new Date(expires * 1000).toISOString(),
    };
  });
};

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/v1/temp-urls") {
    req.resume();
    return send(res, 404, { error: { code: "not_found" } });
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    void (async () => {
      let input: { keys?: unknown; ttlSeconds?: unknown };
      try {
        input = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof input;
      } catch {
        return send(res, 400, { error: { code: "invalid_json" } });
      }
      const { keys, ttlSeconds } = input;
      const keysOk = Array.isArray(keys) && keys.length >= 1 && keys.length <= 50 && keys.every(validKey);
      const ttlOk = ttlSeconds === undefined || (Number.isInteger(ttlSeconds) && (ttlSeconds as number) >= 1);
      if (!keysOk || !ttlOk) return send(res, 400, { error: { code: "invalid_event_data" } });
      const userId = await user(req.headers.authorization);
      if (!userId) return send(res, 401, { error: { code: "unauthorized" } });
      send(res, 200, { items: await signUrls(keys, (ttlSeconds as number | undefined) ?? TTL_SECONDS, userId) });
    })().catch(() => send(res, 500, { error: { code: "internal" } }));
  });
});
serveBaseline(server, () => pool.end());
