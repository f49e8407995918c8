// The service images run as shipped: each image's own entrypoint inside the image (buildah run, chroot
// isolation, the image's user), against the run's NATS and PostgreSQL on loopback. Builds the images first
// (`npm run images`) when they are missing or from another commit; CI builds them before the tests (.ci/run).
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SERVICES, type ServiceName } from "@snapmesh/events";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildah, cmdlineOf, descendants, kill, runEntrypoint, STORAGE, uidOf } from "../support/buildah.ts";
import { eventually, freePort, isolatedEnv, scratchDir } from "../support/index.ts";

const VERSION = JSON.parse(readFileSync("package.json", "utf8")).version as string;
/** Bound on each service image (uncompressed): the Node binary is ~120 MB, Debian's libraries ~20 MB, a bundle ~5 MB. */
const MAX_IMAGE_BYTES = 180 * 1000 * 1000;
const REGISTRY_BIN = "/usr/bin/docker-registry";

const buildahMissing =
  spawnSync("buildah", ["--version"]).status !== 0
    ? "buildah is not installed (apt-get install -y buildah mmdebstrap)"
    : process.getuid?.() !== 0
      ? "not running as root (buildah --isolation chroot needs root)"
      : undefined;

/** The images `npm run images` builds: one per service, and the console's. */
const IMAGES = [...SERVICES, "console"] as const;
type ImageName = (typeof IMAGES)[number];
const image = (name: ImageName) => `localhost/snapmesh-${name}:${VERSION}`;
/** Built from this commit (its revision label), so the test runs what this checkout ships. */
const imageCurrent = (ref: string) => {
  const label = spawnSync(
    "buildah",
    [
      ...STORAGE,
      "inspect",
      "--type",
      "image",
      "--format",
      '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}',
      ref,
    ],
    { encoding: "utf8" },
  );
  const head = spawnSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).stdout.trim();
  return label.status === 0 && head !== "" && label.stdout.trim().startsWith(head);
};

/** What each service needs beyond the common test environment to start. */
const SERVICE_ENV: Record<ServiceName, Record<string, string>> = {
  auth: { SNAPMESH_DEV_AUTH: "1" },
  social: {},
  "share-code": { SNAPMESH_STORAGE_URL: "http://127.0.0.1:9" },
  storage: { STORAGE_SIGNING_KEYS: `k:${"z".repeat(40)}` },
};

/** One REST call a client makes, answered by the service in the image (database included). */
const REST_CALL: Record<ServiceName, (base: string) => Promise<void>> = {
  auth: async (base) => {
    const res = await fetch(`${base}/v1/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ provider: "dev", userId: "image-tester" }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { user: { id: string } } & Record<string, unknown>;
    expect(body.user.id).toBeTruthy();
  },
  social: async (base) => {
    const res = await fetch(`${base}/v1/photos/p-1/social`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ likes: 0 });
  },
  "share-code": async (base) => {
    const res = await fetch(`${base}/v1/share-codes/NOSUCHCODE`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/^[a-z_]+$/);
  },
  storage: async (base) => {
    // No session: refused before the body is read, as JSON.
    const png = PNG.sync.write(new PNG({ width: 1, height: 1 }));
    const res = await fetch(`${base}/v1/objects/image-test/a.png`, {
      method: "PUT",
      headers: { "content-type": "image/png" },
      body: png,
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
  },
};

/** Paths in a container's rootfs changed since `since`, but for /tmp and what the runtime mounts or writes. */
function writtenOutsideTmp(root: string, since: number): string[] {
  const skip = new Set(["/tmp", "/proc", "/sys", "/dev", "/run", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]);
  const changed: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = `${rel}/${entry.name}`;
      if (skip.has(path)) continue;
      if (lstatSync(join(root, path)).mtimeMs > since) changed.push(path);
      if (entry.isDirectory()) walk(path);
    }
  };
  walk("");
  return changed;
}

type Running = ReturnType<typeof runEntrypoint>;

/** Waits for 200 on /readyz; fails at once with the process's stderr if it exits first. */
async function untilReady(base: string, run: Running, what: string): Promise<void> {
  await eventually(
    async () => {
      if (run.child.exitCode !== null) throw new Error(`${what} exited ${run.child.exitCode}: ${run.stderr()}`);
      return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
    },
    `${what} /readyz`,
    60_000,
  );
}

/**
 * SIGTERM to the entrypoint's own process (below buildah's chroot helpers), as a runtime signals PID 1, after
 * checking it runs as UID 65532; it must exit 0.
 */
async function stopAsRuntime(run: Running, binary: string): Promise<void> {
  const node = descendants(run.child.pid ?? -1).find((pid) => cmdlineOf(pid)[0] === binary);
  expect(node).toBeDefined();
  expect(uidOf(node as number)).toBe(65532);
  process.kill(node as number, "SIGTERM");
  expect(await run.exit, run.stderr()).toBe(0);
}

/**
 * Stops it as a runtime would (stopAsRuntime), then checks it works on a read-only root: nothing written outside
 * /tmp since `since` (buildah itself writes the resolver files).
 */
async function stopReadOnly(run: Running, ctr: string, binary: string, since: number): Promise<void> {
  await stopAsRuntime(run, binary);
  expect(writtenOutsideTmp(buildah("mount", ctr), since)).toEqual([]);
  buildah("umount", ctr);
}

function killAll(run: Running): void {
  if (run.child.exitCode === null) for (const pid of [run.child.pid ?? -1, ...descendants(run.child.pid ?? -1)]) kill(pid);
}

describe.skipIf(buildahMissing)(`service images${buildahMissing ? ` (skipped: ${buildahMissing})` : ""}`, () => {
  beforeAll(() => {
    if (IMAGES.some((s) => !imageCurrent(image(s)))) execFileSync("bash", ["scripts/images.sh"], { stdio: "inherit" });
  }, 900_000);

  describe.each(IMAGES)("%s", (service) => {
    let ctr = "";
    let config: { Entrypoint: string[]; User: string; StopSignal?: string; Labels: Record<string, string> };
    beforeAll(() => {
      ctr = buildah("from", "--quiet", "--pull=never", image(service));
      config = JSON.parse(buildah("inspect", "--type", "image", image(service))).OCIv1.config;
    }, 120_000);
    afterAll(() => {
      if (ctr) buildah("rm", ctr);
    });

    it("is configured to run as non-root, stop on SIGTERM, and says where it comes from", () => {
      expect(config.User).toBe("65532:65532");
      expect(config.StopSignal).toBe("SIGTERM");
      expect(config.Entrypoint).toEqual(["/nodejs/bin/node", "/app/bin/main.mjs"]);
      expect(config.Labels).toMatchObject({
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.source": expect.stringMatching(/^https:\/\//),
        "org.opencontainers.image.revision": expect.stringMatching(/^[0-9a-f]{40}/),
      });
    });

    it(`is smaller than ${MAX_IMAGE_BYTES / 1e6} MB and holds no shell`, () => {
      const root = buildah("mount", ctr);
      try {
        const bytes = Number(execFileSync("du", ["-sbx", root], { encoding: "utf8" }).split("\t")[0]);
        expect(bytes).toBeGreaterThan(50 * 1000 * 1000);
        expect(bytes).toBeLessThan(MAX_IMAGE_BYTES);
        for (const shell of ["bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "usr/bin/dash"])
          expect(spawnSync("test", ["-e", `${root}/${shell}`]).status, shell).not.toBe(0);
      } finally {
        buildah("umount", ctr);
      }
    });

    if (service === "console")
      it("serves the page and the mesh API as UID 65532, exits 0 on SIGTERM", async () => {
        const port = await freePort("127.0.0.1");
        const env = await isolatedEnv({ PORT: String(port), HOST: "127.0.0.1", CONSOLE_SERVICES: "auth=http://127.0.0.1:9" });
        const since = Date.now() - 1000;
        const run = runEntrypoint(ctr, config.Entrypoint, env);
        try {
          const base = `http://127.0.0.1:${port}`;
          await untilReady(base, run, "the console");
          const page = await fetch(`${base}/`);
          expect(page.headers.get("content-type")).toContain("text/html");
          const html = await page.text();
          expect(html).toContain("<title>snapmesh</title>");
          // Every asset the page names is in the image (no CDN).
          const assets = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
          expect(assets.length).toBeGreaterThan(0);
          for (const asset of assets) expect((await fetch(`${base}/${asset}`)).status, asset).toBe(200);
          const mesh = (await (await fetch(`${base}/api/mesh`)).json()) as { services: Array<{ name: string; ready: boolean }> };
          expect(mesh.services).toEqual([expect.objectContaining({ name: "auth", ready: false })]);
          await stopReadOnly(run, ctr, config.Entrypoint[0]!, since);
        } finally {
          killAll(run);
        }
      }, 120_000);
    else
      it("migrates with `main migrate`, serves /readyz and a REST call as UID 65532, exits 0 on SIGTERM", async () => {
        const port = await freePort("127.0.0.1");
        const env = await isolatedEnv({ PORT: String(port), MIGRATE_ON_START: "0", ...SERVICE_ENV[service] });

        // The build left V8's code cache of the bundle beside it, and every part the bundle requires on first use.
        const root = buildah("mount", ctr);
        let lazy: string[] = [];
        try {
          const bin = readdirSync(`${root}/app/bin`);
          expect(bin.filter((f) => f.endsWith(".cjs.code-cache"))).toHaveLength(1);
          const bundle = readFileSync(`${root}/app/bin/${bin.find((f) => f.endsWith(".cjs"))}`, "utf8");
          lazy = [...bundle.matchAll(/require\("\.\/(lazy\/[\w-]+\.cjs)"\)/g)].map((m) => `/app/bin/${m[1]}`);
        } finally {
          buildah("umount", ctr);
        }
        expect(lazy).toContain("/app/bin/lazy/undici.cjs");
        const load = `for (const f of ${JSON.stringify(lazy)}) if (!Object.keys(require(f)).length) process.exit(1);`;
        const loaded = runEntrypoint(ctr, [config.Entrypoint[0]!], {}, ["-e", load]);
        expect(await loaded.exit, loaded.stderr()).toBe(0);
        const since = Date.now() - 1000;
        const migrate = runEntrypoint(ctr, config.Entrypoint, env, ["migrate"]);
        expect(await migrate.exit, migrate.stderr()).toBe(0);

        const svc = runEntrypoint(ctr, config.Entrypoint, env);
        try {
          const base = `http://127.0.0.1:${port}`;
          await untilReady(base, svc, service);
          // Without MIGRATE_ON_START its tables exist only because `migrate` made them.
          await REST_CALL[service](base);
          // It says what it is: the image's version and the commit it was built from.
          expect(await (await fetch(`${base}/healthz`)).json()).toEqual({
            status: "ok",
            service,
            version: VERSION,
            revision: config.Labels["org.opencontainers.image.revision"],
          });
          await stopReadOnly(svc, ctr, config.Entrypoint[0]!, since);
          // The service started from that cache: the loader says when V8 refuses it or it cannot be read.
          expect(svc.stderr()).not.toContain("starting without it");
        } finally {
          killAll(svc);
        }
      }, 120_000);
  });

  // Debian's docker-registry (distribution) on loopback: what `npm run images -- --push` talks to.
  describe.skipIf(!existsSync(REGISTRY_BIN))(
    `pushed to a registry${existsSync(REGISTRY_BIN) ? "" : ` (skipped: ${REGISTRY_BIN} is missing; apt-get install -y docker-registry)`}`,
    () => {
      let registry: ChildProcess | undefined;
      let host = "";
      beforeAll(async () => {
        const dir = scratchDir("registry");
        const port = await freePort("127.0.0.1");
        host = `127.0.0.1:${port}`;
        const config = join(dir, "config.yml");
        writeFileSync(
          config,
          `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${dir}/data } }\nhttp: { addr: "${host}" }\n`,
        );
        registry = spawn(REGISTRY_BIN, ["serve", config], { stdio: "ignore" });
        await eventually(async () => (await fetch(`http://${host}/v2/`).catch(() => undefined))?.status === 200, "the registry");
      }, 60_000);
      afterAll(() => registry?.kill("SIGTERM"));

      it("`npm run images -- --no-build --push` pushes every image; each manifest comes back by its digest", async () => {
        const out = scratchDir("images-out");
        const log = execFileSync("bash", ["scripts/images.sh", "--no-build", "--push", host], {
          encoding: "utf8",
          env: { ...process.env, SNAPMESH_IMAGES_OUT: out },
        });
        const digests = JSON.parse(readFileSync(join(out, "images.json"), "utf8")) as Record<string, string>;
        expect(Object.keys(digests).sort()).toEqual([...IMAGES].sort());
        for (const service of IMAGES) {
          const digest = digests[service] as string;
          expect(log).toContain(`pushed: ${host}/snapmesh-${service}:${VERSION}@${digest}`);
          const res = await fetch(`http://${host}/v2/snapmesh-${service}/manifests/${digest}`, {
            headers: {
              accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            },
          });
          expect(res.status).toBe(200);
          const body = Buffer.from(await res.arrayBuffer());
          expect(`sha256:${createHash("sha256").update(body).digest("hex")}`).toBe(digest);
        }
        // And a runtime pulls it by digest (what Knative resolves a tag to).
        const pulled = buildah("pull", "--quiet", "--tls-verify=false", `${host}/snapmesh-auth@${digests.auth}`);
        expect(pulled).toBe(buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", image("auth")));
      }, 300_000);
    },
  );
});
