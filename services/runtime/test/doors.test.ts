// Regression tests for what the HTTP doors must refuse or bound (issue 10 §3, §5, §7): dev tokens where dev
// sign-in is off, partial batches, bytes that are not UTF-8, and errors Node's HTTP parser raises by itself.
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientAddress, SESSION_AUDIENCE, trustedHops } from "../src/internal.ts";
import type { Service } from "../src/service.ts";
import { NoteCreate, notesService } from "./fixture/notes.ts";
import { isolatedConfig } from "./helpers.ts";

interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/**
 * Sends bytes exactly as given (fetch would refuse or fix them) and reads the response until the server
 * closes. The client never half-closes: Node aborts a request whose client ended its side.
 */
function raw(port: number, request: Buffer | string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const [head = "", body = ""] = text.split("\r\n\r\n", 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body });
    });
    socket.write(request);
  });
}

const errorOf = (body: string) => (JSON.parse(body) as { error: { code: string; message: string } }).error;

let service: Service;
let port: number;
let jwksServer: Server;
let signToken: (userId: string, provider: string) => Promise<string>;

async function startNotes(overrides: Record<string, string>): Promise<{ service: Service; port: number }> {
  const s = await notesService(await isolatedConfig(overrides));
  const server = await s.start({ host: "127.0.0.1", port: 0 });
  const addr = server.address();
  return { service: s, port: typeof addr === "object" && addr ? addr.port : 0 };
}

const extra: Service[] = [];

beforeAll(async () => {
  // auth's keys, served as its JWKS, so the services verify tokens the way they do in the mesh.
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" }] };
  jwksServer = createServer((_req, res) => res.setHeader("content-type", "application/json").end(JSON.stringify(jwks)));
  await new Promise<void>((r) => jwksServer.listen(0, "127.0.0.1", r));
  const jwksPort = (jwksServer.address() as { port: number }).port;
  signToken = (userId, provider) =>
    new SignJWT({ prv: provider })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setSubject(userId)
      .setIssuer("snapmesh-auth")
      .setAudience(SESSION_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
  ({ service, port } = await startNotes({
    MAX_BODY_BYTES: "65536",
    HEADERS_TIMEOUT_MS: "400",
    REQUEST_TIMEOUT_MS: "800",
    SNAPMESH_JWKS_URL: `http://127.0.0.1:${jwksPort}/jwks.json`,
  }));
});

afterAll(async () => {
  for (const s of extra) await s.stop();
  await service?.stop();
  await new Promise((r) => jwksServer?.close(r));
});

async function count(table: "notes" | "outbox" | "inbox", s: Service = service): Promise<number> {
  const { rows } = await s.db.query<{ n: string }>(`SELECT count(*) AS n FROM notes.${table}`);
  return Number(rows[0]?.n);
}

const note = (i: number, noteId = `batch-note-${i}`) => ({
  specversion: "1.0",
  id: `batch-${noteId}-${i}`,
  source: "/test/batch-atomic",
  type: NoteCreate.type,
  data: { noteId, text: `t${i}` },
});

describe("dev tokens (§3)", () => {
  it("a token the dev provider minted is refused with 401 dev_token_refused where SNAPMESH_DEV_AUTH is off", async () => {
    const post = async (p: number, token: string, noteId: string) =>
      fetch(`http://127.0.0.1:${p}/v1/notes`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ noteId, text: "x" }),
      });
    const refused = await post(port, await signToken("alice", "dev"), "dev-token-off");
    expect(refused.status).toBe(401);
    expect((await refused.json()) as unknown).toMatchObject({ error: { code: "dev_token_refused" } });
    expect((await post(port, await signToken("alice", "wechat"), "wechat-token")).status).toBe(201);

    const jwksUrl = service.opts.config.SNAPMESH_JWKS_URL!;
    const dev = await startNotes({ SNAPMESH_JWKS_URL: jwksUrl, SNAPMESH_DEV_AUTH: "1" });
    extra.push(dev.service);
    expect((await post(dev.port, await signToken("alice", "dev"), "dev-token-on")).status).toBe(201);
  });
});

describe("batches are all-or-nothing (§5)", () => {
  it("a batch whose 31st entry fails commits none of the 40 and names the failing index", async () => {
    const [notes, outbox, inbox] = [await count("notes"), await count("outbox"), await count("inbox")];
    // Entry 30 repeats entry 0's note id: the handler refuses it after 30 entries were applied in the transaction.
    const entries = Array.from({ length: 40 }, (_, i) => note(i, i === 30 ? "batch-note-0" : `batch-note-${i}`));
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify(entries),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { index: number } } };
    expect(body.error).toMatchObject({ code: "note_exists", details: { index: 30 } });
    expect([await count("notes"), await count("outbox"), await count("inbox")]).toEqual([notes, outbox, inbox]);

    // The same batch without the bad entry applies whole.
    const fine = entries.filter((_, i) => i !== 30);
    const ok = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify(fine),
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as unknown[]).length).toBe(39);
    expect(await count("notes")).toBe(notes + 39);
  });
});

describe("JSON must be UTF-8 (§7)", () => {
  const badText = Buffer.concat([
    Buffer.from('{"noteId":"utf8-bad","text":"bad '),
    Buffer.from([0xff, 0xfe, 0xc0, 0xaf]),
    Buffer.from(' end"}'),
  ]);
  const http = (head: string, body: Buffer) =>
    Buffer.concat([Buffer.from(`${head}content-length: ${body.length}\r\nconnection: close\r\n\r\n`), body]);

  it.each([
    ["REST", "POST /v1/notes HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n", badText],
    [
      "CloudEvents binary",
      `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nce-specversion: 1.0\r\nce-id: u1\r\nce-source: /t\r\nce-type: ${NoteCreate.type}\r\n`,
      badText,
    ],
    [
      "CloudEvents structured",
      "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/cloudevents+json\r\n",
      Buffer.concat([
        Buffer.from(`{"specversion":"1.0","id":"u2","source":"/t","type":"${NoteCreate.type}","data":`),
        badText,
        Buffer.from("}"),
      ]),
    ],
  ])("%s: a body with bytes that are not UTF-8 gets 400 invalid_utf8 and stores nothing", async (_door, head, body) => {
    const before = await count("notes");
    const res = await raw(port, http(head, body));
    expect(res.status).toBe(400);
    expect(errorOf(res.body).code).toBe("invalid_utf8");
    expect(await count("notes")).toBe(before);
  });

  it("a ce-* header that percent-decodes to invalid UTF-8, or holds raw non-ASCII bytes, gets 400 and stores nothing", async () => {
    const before = await count("notes");
    const body = Buffer.from(JSON.stringify({ noteId: "utf8-header", text: "x" }));
    const head = (subject: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nce-specversion: 1.0\r\nce-id: h1\r\nce-source: /t\r\nce-type: ${NoteCreate.type}\r\nce-subject: `,
        ),
        subject,
        Buffer.from(`\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`),
        body,
      ]);
    const percent = await raw(port, head(Buffer.from("caf%C3%A9-%FF%FE")));
    expect([percent.status, errorOf(percent.body).code]).toEqual([400, "invalid_utf8"]);
    const rawBytes = await raw(port, head(Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9])));
    expect([rawBytes.status, errorOf(rawBytes.body).code]).toEqual([400, "invalid_header"]);
    expect(await count("notes")).toBe(before);
    // Valid percent-encoded UTF-8 still works.
    const ok = await raw(port, head(Buffer.from("caf%C3%A9")));
    expect(ok.status).toBe(200);
  });
});

describe("the server's own errors are JSON (§7)", () => {
  it("a 20 kB request header gets 431 with the JSON error body", async () => {
    const res = await raw(port, `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(res.status).toBe(431);
    expect(res.headers).toMatch(/content-type: application\/json/i);
    expect(errorOf(res.body).code).toBe("headers_too_large");
  });

  it("a request that is not HTTP gets 400 with the JSON error body", async () => {
    const res = await raw(port, "HELLO / WORLD\r\n\r\n");
    expect(res.status).toBe(400);
    expect(errorOf(res.body).code).toBe("bad_http_request");
  });

  it("a body over the limit gets 413 with the JSON error body", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ ...note(0), data: { noteId: "big", text: "x".repeat(70_000) } }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
  });

  it("a client too slow with its headers is cut off with 408 JSON", async () => {
    const res = await raw(port, "GET /healthz HTTP/1.1\r\nhost: x\r\n");
    expect(res.status).toBe(408);
    expect(errorOf(res.body).code).toBe("request_timeout");
  });

  it("a client too slow with its body is cut off with 408 JSON, and nothing is stored", async () => {
    const before = await count("notes");
    const res = await raw(
      port,
      `POST /v1/notes HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{"noteId":"slow",`,
    );
    expect(res.status).toBe(408);
    expect(errorOf(res.body).code).toBe("request_timeout");
    expect(await count("notes")).toBe(before);
  });
});

describe("client address behind proxies (§5)", () => {
  // Knative without the activator in the path: gateway (10.0.0.5) -> queue-proxy (loopback) -> app, with
  // TRUST_PROXY_HOPS=3 set for the path with the activator. The client 203.0.113.9 forged 198.51.100.7.
  it("stops at the first public address, so a forged X-Forwarded-For cannot pick the client's bucket", async () => {
    const server = createServer((req, res) => {
      res.end(JSON.stringify({ ip: clientAddress(req, trustedHops(3)) }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ip`;
    const ipFor = async (xff: string) =>
      ((await (await fetch(url, { headers: { "x-forwarded-for": xff } })).json()) as { ip: string }).ip;
    try {
      expect(await ipFor("198.51.100.7, 203.0.113.9, 10.0.0.5")).toBe("203.0.113.9");
      // With the activator in the path: client, gateway, activator.
      expect(await ipFor("198.51.100.7, 203.0.113.9, 10.0.0.5, 10.0.0.6")).toBe("203.0.113.9");
      // Never more hops than configured, even when all are internal.
      expect(await ipFor("192.168.1.1, 10.0.0.4, 10.0.0.5, 10.0.0.6")).toBe("10.0.0.4");
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
