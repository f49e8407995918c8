// The web console in a real browser (Debian's Chromium, driven by playwright-core) against the whole mesh as
// `snapmesh dev` runs it: the album on the public REST APIs, then the mesh console showing those facts, a poison
// message in the dead-letter stream, and a replay. Screenshots go to test-results/screenshots (not committed);
// SNAPMESH_SCREENSHOTS_DIR redirects them (`npm run console:screenshots` refreshes the README's two).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { connect, type NatsConnection, headers as natsHeaders } from "nats";
import { type Browser, chromium, type Page } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromNatsMessage, publishDeadLetter, subjectFor } from "../../services/runtime/src/internal.ts";
import { type Mesh, startMesh } from "../support/mesh.ts";
import { scratchDir } from "../support/service.ts";

const CHROMIUM = process.env.SNAPMESH_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = process.env.SNAPMESH_SCREENSHOTS_DIR ?? join(process.cwd(), "test-results", "screenshots");
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
// Page code runs in the browser; this file is type-checked against Node's globals, so it names what it uses.
interface Browserish {
  document: unknown;
  localStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void };
}
const naturalWidth = (img: unknown) => (img as { naturalWidth: number }).naturalWidth;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

/** Waits for a condition the page shows (15 s: a fact crosses the mesh in well under that). */
const poll = <T>(fn: () => T | Promise<T>, opts: { timeout?: number } = {}) =>
  expect.poll(fn, { timeout: 15_000, interval: 100, ...opts });

let mesh: Mesh;
let browser: Browser;
let nc: NatsConnection;
// An OIDC identity provider lies outside the product: an HTTP server on loopback publishes its JWKS.
let idp: Server;
let idpKey: import("jose").CryptoKey;
const IDP = { issuer: "https://idp.example", audience: "photo-album" };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (see .ci/run)`);
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  idpKey = privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "idp-1", alg: "RS256" }] });
  idp = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(jwks));
  await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
  mesh = await startMesh({
    SNAPMESH_EGRESS: "none",
    STORAGE_MAX_OBJECT_BYTES: "200000",
    OIDC_ISSUER: IDP.issuer,
    OIDC_AUDIENCE: IDP.audience,
    OIDC_JWKS_URL: `http://127.0.0.1:${(idp.address() as { port: number }).port}/jwks`,
    EGRESS_ALLOW_HOSTS: "127.0.0.1",
  });
  nc = await connect({ servers: mesh.natsUrl });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  mkdirSync(SHOTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await nc?.close();
  await mesh?.stop();
  await new Promise((r) => idp?.close(r));
});

/** A real PNG of `size`×`size` pixels, a gradient so it is not all one colour. */
function png(size: number): Buffer {
  const image = new PNG({ width: size, height: size });
  for (let i = 0; i < size * size; i++) {
    image.data.set([(i * 7) % 256, (i * 3) % 256, 180, 255], i * 4);
  }
  return PNG.sync.write(image);
}

async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: axeSource });
  const result = (await page.evaluate(() => {
    const g = globalThis as unknown as Browserish & { axe: { run(ctx: unknown, opts: unknown): Promise<unknown> } };
    return g.axe.run(g.document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
  })) as { violations: Array<{ id: string; nodes: Array<{ target: string[] }> }> };
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** The album story's fact types, in the order the console's fact table shows them (each type once). */
const STORY = [
  "snapmesh.storage.object.created",
  "snapmesh.social.like.added",
  "snapmesh.social.comment.created",
  "snapmesh.sharecode.created",
  "snapmesh.sharecode.scanned",
  "snapmesh.storage.object.deleted",
];

async function storyFacts(page: Page): Promise<string[]> {
  const types = await page
    .locator("#facts tr")
    .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { type: string } }).dataset.type));
  return types.filter((t, i) => STORY.includes(t) && types.indexOf(t) === i);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

describe("the web console in Chromium", () => {
  it("album: sign in, upload, like, comment, share with a QR code, resolve, bad input, delete", async () => {
    // The console open beside the album from the start: the facts must arrive live, pushed as they pass.
    const live = await browser.newPage({ viewport: DESKTOP });
    await live.goto(`${mesh.consoleUrl}/#/console`);
    await poll(() => live.locator("li.svc.ready").count()).toBe(4);
    // Each with the version it runs (npm start: the repository's).
    const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
    expect(await live.locator("li.svc .version").allTextContents()).toEqual(Array(4).fill(` ${version}`));
    const page = await browser.newPage({ viewport: DESKTOP });
    await page.goto(`${mesh.consoleUrl}/#/album`);
    await page.getByLabel("User id").fill("alice");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await poll(() => page.locator("#whoami").textContent()).toBe("alice");

    // A real PNG through the file input (the drop zone's own input).
    const scratch = scratchDir("console-files");
    const photo = join(scratch, "lake.png");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(photo, png(64));
    await page.setInputFiles("#file", photo);
    const card = page.locator("li.photo").first();
    await poll(() => card.locator("img").first().evaluate(naturalWidth)).toBe(64);

    await card.getByRole("button", { name: "Like" }).click();
    await poll(() => card.getByTestId("likes").textContent()).toBe("1 like");
    await card.getByRole("textbox", { name: /^Comment on/ }).fill("what a view");
    await card.getByRole("button", { name: "Comment" }).click();
    await poll(() => card.locator("ol.comments li").allTextContents()).toEqual(["alice what a view"]);

    await card.getByRole("button", { name: "Share" }).click();
    const code = (await card.locator("code.code").textContent({ timeout: 15_000 }))!;
    expect(code).toMatch(/^[23456789A-Z]{10}$/);
    await poll(() => card.locator("img.qr").evaluate(naturalWidth)).toBeGreaterThan(0);
    await page.getByLabel("Share code", { exact: true }).fill(code);
    await page.getByRole("button", { name: "Open" }).click();
    await poll(() => page.locator(".resolved p").textContent()).toContain("scanned 1 time");
    expect(await page.locator(".resolved pre").textContent()).toMatch(/"name": "\w+-lake\.png"/);

    expect(await axeViolations(page)).toEqual([]);
    await shot(page, "album-desktop");
    await page.setViewportSize(PHONE);
    await shot(page, "album-phone");
    await page.setViewportSize(DESKTOP);

    // Bad input gets the API's own words, and nothing else breaks.
    const text = join(scratch, "notes.png");
    writeFileSync(text, "just some text, not an image");
    await page.setInputFiles("#file", text);
    await poll(() => page.locator(".notice.error").textContent()).toContain("(unsupported_content)");
    const big = join(scratch, "big.png");
    writeFileSync(big, Buffer.concat([png(64), Buffer.alloc(300_000)]));
    await page.setInputFiles("#file", big);
    await poll(() => page.locator(".notice.error").textContent()).toContain("(object_too_large)");
    expect(await page.locator("li.photo").count()).toBe(1);

    await card.getByRole("button", { name: "Delete" }).click();
    await poll(() => page.locator("li.photo").count()).toBe(0);

    // An expired session: the API's 401 is shown and the page asks to sign in again.
    await page.evaluate(() => {
      const { localStorage } = globalThis as unknown as Browserish;
      const s = JSON.parse(localStorage.getItem("snapmesh.session")!) as { token: string };
      localStorage.setItem("snapmesh.session", JSON.stringify({ ...s, token: `${s.token.slice(0, -4)}AAAA` }));
    });
    await page.setInputFiles("#file", photo);
    await poll(() => page.locator(".notice.error").textContent()).toMatch(/\(\w*(unauthorized|invalid_token)\w*\)/);
    await page.reload();
    await poll(() => page.getByRole("button", { name: "Sign in", exact: true }).count()).toBe(1);
    await page.close();
    await poll(() => storyFacts(live)).toEqual(STORY);
    await live.close();
  });

  it("console: the album's facts in order, consumer lag, a poison message in the DLQ, and a replay handled", async () => {
    const page = await browser.newPage({ viewport: DESKTOP });
    await page.goto(`${mesh.consoleUrl}/#/console`);
    await poll(() => storyFacts(page)).toEqual(STORY);
    await poll(() => page.locator("li.svc.ready").count()).toBe(4);

    // A poison message: not a CloudEvent at all, on a subject social consumes.
    const h = natsHeaders();
    h.set("content-type", "application/cloudevents+json");
    await nc
      .jetstream()
      .publish(subjectFor(mesh.names, "snapmesh.storage.object.deleted"), new TextEncoder().encode("{not json"), {
        headers: h,
      });
    // A delivery that failed for good while its subscriber was down: the real object.created fact of the album.
    const jsm = await nc.jetstreamManager();
    const created = await jsm.streams.getMessage(mesh.names.stream, {
      last_by_subj: subjectFor(mesh.names, "snapmesh.storage.object.created"),
    });
    const event = fromNatsMessage(created.data, created.header);
    await publishDeadLetter(nc, mesh.names, {
      reason: "delivery to social failed with 503",
      consumer: "social",
      attempts: 5,
      subject: created.subject,
      event,
    });

    // The poison reaches every subscriber of the type (social and share-code), and each dead-letters it with its reason.
    const deadRows = page.locator("#dead-letters tr");
    const poison = deadRows.filter({ hasText: "undecodable" });
    await poll(() => poison.count()).toBe(2);
    const consumersOf = (await poison.allTextContents()).map((t) => /share-code|social/.exec(t)?.[0]).sort();
    expect(consumersOf).toEqual(["share-code", "social"]);
    expect(await poison.first().textContent()).toContain("not a valid CloudEvent");
    // Nothing to replay in an entry with no event.
    expect(await poison.getByRole("button").count()).toBe(0);
    const failed = deadRows.filter({ hasText: "delivery to social failed with 503" });
    await poll(() => failed.count()).toBe(1);
    const seq = (await failed.getAttribute("data-seq"))!;

    expect(await axeViolations(page)).toEqual([]);
    await shot(page, "console-desktop");
    await page.setViewportSize(PHONE);
    await shot(page, "console-phone");
    await page.setViewportSize(DESKTOP);

    // Replay without the operator token is refused in the API's words; with it, the fact goes back on the stream.
    await failed.getByRole("button", { name: `Replay ${seq}` }).click();
    await poll(() => page.locator(".notice.error").textContent()).toContain("(unauthorized)");
    await page.getByLabel("Operator token (needed to replay)").fill(mesh.operatorToken());
    await failed.getByRole("button", { name: `Replay ${seq}` }).click();
    await poll(() => page.locator(".notice").first().textContent()).toContain(`replayed dead letter ${seq}`);
    await poll(() => page.locator(`#facts tr`).filter({ hasText: event.id }).count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(
      2,
    );
    // Handled: social's consumer drains (its inbox de-duplicates the repeat) and only the poison stays dead-lettered.
    await poll(async () => {
      const res = (await (await fetch(`${mesh.consoleUrl}/api/consumers`)).json()) as {
        consumers: Array<{ pending: number; ackPending: number }>;
      };
      return res.consumers.every((c) => c.pending === 0 && c.ackPending === 0);
    }).toBe(true);
    await poll(() => failed.count()).toBe(0);
    expect(await deadRows.count()).toBe(2);
    await page.close();
  });
  it("album: sign in with the providers auth accepts, OIDC included, and an ID token it refuses", async () => {
    const page = await browser.newPage({ viewport: PHONE });
    await page.goto(`${mesh.consoleUrl}/#/album`);
    const forms = page.getByRole("form");
    await poll(() => forms.count()).toBe(2);
    expect(await page.getByRole("button").allTextContents()).toEqual(expect.arrayContaining(["Sign in", "Sign in with OIDC"]));
    expect(await page.getByRole("button", { name: "Sign in with WeChat" }).count()).toBe(0);
    const idToken = (audience: string) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "RS256", kid: "idp-1" })
        .setSubject("idp-user-42")
        .setIssuer(IDP.issuer)
        .setAudience(audience)
        .setExpirationTime("5m")
        .sign(idpKey);
    const field = page.getByLabel(`ID token from ${IDP.issuer} (audience ${IDP.audience})`);
    await field.fill(await idToken("another-app"));
    await page.getByRole("button", { name: "Sign in with OIDC" }).click();
    await poll(() => page.locator(".notice.error").textContent()).toContain("(invalid_id_token)");
    await field.fill(await idToken(IDP.audience));
    await page.getByRole("button", { name: "Sign in with OIDC" }).click();
    await poll(() => page.locator("#whoami").textContent()).toMatch(/\S/);
    const userId = await page.locator("#whoami").textContent();
    expect(userId).not.toBe("alice");
    expect(await axeViolations(page)).toEqual([]);
    await page.close();

    // auth fetched the IdP's keys through its egress client: the console lists that call with its status.
    const view = await browser.newPage({ viewport: DESKTOP });
    await view.goto(`${mesh.consoleUrl}/#/console`);
    const call = view.locator("#egress-calls tbody tr").filter({ hasText: "auth" }).filter({ hasText: "127.0.0.1" });
    await poll(() => call.count()).toBeGreaterThanOrEqual(1);
    const cells = await call.first().locator("td").allTextContents();
    expect(cells.slice(1, 5)).toEqual(["auth", "127.0.0.1", "200", "ok"]);
    expect(Date.parse(cells[0]!)).toBeGreaterThan(Date.now() - 60_000);
    // The flow picture: auth's calls leave directly (this mesh runs without a gateway, SNAPMESH_EGRESS=none).
    await poll(() => view.locator('.flow [data-egress="auth"]').textContent()).toMatch(/^auth —\d+ calls?→ outside \(direct\)$/);
    expect(await axeViolations(view)).toEqual([]);
    await view.close();
  });
});
