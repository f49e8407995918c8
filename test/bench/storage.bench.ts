// Storage benchmarks: downloading a 1 MB object through the service (signed URL, metadata lookup,
// streaming from the filesystem backend) against reading the same bytes straight from disk in this
// process; and the rate of signed-URL issue.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { storage } from "../../services/storage/src/service.ts";
import { testEventKeysEnv } from "../support/event-keys.ts";
import { uniqueName } from "../support/names.ts";
import { freshDatabase } from "../support/postgres.ts";
import { testIssuer } from "../support/tokens.ts";
import { fmt, row, throughput } from "./stats.ts";

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);

export async function storageBench(natsUrl: string, databaseUrl: string): Promise<void> {
  console.log("\n## storage: 1 MB download through the service vs. straight from disk (concurrency 8)");
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-bench-storage-"));
  const issuer = await testIssuer();
  const service = await storage.create({
    PORT: "0",
    LOG_LEVEL: "silent",
    DATABASE_URL: await freshDatabase(databaseUrl, "bench"),
    NATS_URL: natsUrl,
    EVENTS_STREAM: uniqueName("BENCHS"),
    EVENTS_SUBJECT_PREFIX: uniqueName("benchs").toLowerCase(),
    ...testEventKeysEnv(),
    STORAGE_DIR: dir,
    STORAGE_SIGNING_KEYS: `b:${randomBytes(32).toString("hex")}`,
  });
  service.authenticate = issuer.verifier;
  const server = await service.start({ host: "127.0.0.1" });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const auth = await issuer.bearer("bench");
  const body = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(1024 * 1024 - 8)]);
  const stored = (await (
    await fetch(`${base}/v1/objects/bench/one-mb.png`, {
      method: "PUT",
      headers: { authorization: auth, "content-type": "image/png" },
      body,
    })
  ).json()) as {
    sha256: string;
  };
  const blob = (await service.db.query<{ blob: string }>("SELECT blob FROM storage.objects WHERE key = 'bench/one-mb.png'"))
    .rows[0]!.blob;
  const diskPath = join(dir, "objects", blob);
  const signed = (await (
    await fetch(`${base}/v1/temp-urls`, {
      method: "POST",
      headers: { authorization: auth, "content-type": "application/json" },
      body: JSON.stringify({ keys: ["bench/one-mb.png"] }),
    })
  ).json()) as {
    items: Array<{ url: string }>;
  };
  const url = signed.items[0]!.url;
  const dispatcher = new Agent({ connections: 8 });
  const check = createHash("sha256")
    .update(Buffer.from(await (await fetch(url)).arrayBuffer()))
    .digest("hex");
  if (check !== stored.sha256) throw new Error("downloaded bytes differ from the upload");

  const disk = await throughput(async () => void (await readFile(diskPath)), 8, DURATION_MS);
  const http = await throughput(
    async () => {
      const res = await request(url, { dispatcher });
      await res.body.arrayBuffer();
    },
    8,
    DURATION_MS,
  );
  row("read 1 MB from disk (fs.readFile)", `${fmt(disk)} MB/s`);
  row("GET 1 MB by temporary URL through storage", `${fmt(http)} MB/s`, `${fmt(disk)} MB/s`, http / disk);

  console.log("\n## storage: signed-URL issue rate (POST /v1/temp-urls, concurrency 8)");
  const sign = (keys: string[]) => async () => {
    const res = await request(`${base}/v1/temp-urls`, {
      method: "POST",
      dispatcher,
      headers: { authorization: auth, "content-type": "application/json" },
      body: JSON.stringify({ keys }),
    });
    await res.body.dump();
  };
  const single = await throughput(sign(["bench/one-mb.png"]), 8, DURATION_MS);
  const batch = await throughput(sign(Array(50).fill("bench/one-mb.png")), 8, DURATION_MS);
  row("1 key per request", `${fmt(single)} URLs/s`);
  row("50 keys per request", `${fmt(batch * 50)} URLs/s`, `${fmt(single)} URLs/s`, (batch * 50) / single);
  await dispatcher.close();
  await service.stop();
}
