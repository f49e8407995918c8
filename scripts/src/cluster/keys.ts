/*
 * snapmesh keys rotate auth|storage [--show] | keys list
 *
 * The key Secrets are the ones the release's pod templates reference (auth: the volume holding
 * AUTH_SIGNING_KEYS_FILE, chart value auth.signingKeysSecret; storage: STORAGE_SIGNING_KEYS's secretKeyRef,
 * storage.signingKeysSecret), never a guessed name. `rotate` puts a new key first (it signs) and keeps the
 * previous ones after it so what they signed keeps verifying: at most 3 keys in all (the signer, the one
 * before, and one more for a rotation repeated within a token's or URL's lifetime). The Secret is replaced
 * with the resourceVersion that was read, so two rotations at once cannot lose a key. auth re-reads its
 * mounted file (no restart); a Secret that reaches a pod through an environment variable (storage) is read
 * only at start, so every snapmesh Knative Service using it gets a new Revision (template annotation
 * `snapmesh.dev/keys-rotated-at`).
 *
 * rotate -o json|yaml:
 *   { "namespace": "shop", "release": "photos", "target": "auth" | "storage", "secret": "snapmesh-auth-keys",
 *     "key": "keys.json", "kid": "<new kid>", "kids": ["<new kid>", "<previous kid>"], "dropped": ["<kid>"],
 *     "restarted": ["photos-snapmesh-storage"], "privateKey"?: <JWK object | "kid:secret">  (only with --show) }
 * list -o json|yaml:
 *   { "namespace": "shop", "release": "photos",
 *     "secrets": [{ "target": "auth", "secret": "snapmesh-auth-keys", "key": "keys.json",
 *                   "signing": "<kid>" | null, "kids": ["<kid>", …], "missing": false }] }
 * Exit 0; 64 unknown target; 66 no release, service or Secret (list: a Secret is missing); 77 forbidden.
 */
import { randomBytes } from "node:crypto";
import type { V1Secret } from "@kubernetes/client-node";
import type { JWK } from "jose";
import { parseSigningKeys } from "../../../services/storage/src/signing.js";
import type { Cluster } from "./connect.js";
import { CliError, EXIT } from "./errors.js";
import { type OutputFormat, painter, printResult, type Table } from "./print.js";
import {
  componentOf,
  type KnativeService,
  listKnativeServices,
  patchKnativeService,
  pickRelease,
  pickService,
  releaseOf,
} from "./release-services.js";

const TARGETS = ["auth", "storage"] as const;
type Target = (typeof TARGETS)[number];
/** The signer, the key before it, and one more. */
export const KEEP = 3;
export const ROTATED_AT = "snapmesh.dev/keys-rotated-at";

/** Where a release keeps a target's keys, read from the pod template. */
interface KeySource {
  secret: string;
  key: string;
  /** true when the pods get the keys as an environment variable (read only at start). */
  viaEnv: boolean;
}

export async function rotate(
  cluster: Cluster,
  opts: { target?: string; show: boolean; release?: string },
  format: OutputFormat,
): Promise<number> {
  const target = targetOf(opts.target);
  const all = await listKnativeServices(cluster);
  const release = pickRelease(all, opts.release, cluster.namespace);
  const source = keySource(pickService(all, release, target, cluster.namespace), target);
  const secret = await readSecret(cluster, source.secret);
  const current = secret?.data?.[source.key];
  if (!secret || current === undefined)
    throw new CliError(
      `${secret ? `Secret ${source.secret} has no key '${source.key}'` : `no Secret ${source.secret}`} in namespace ` +
        `${cluster.namespace}: create it with the first key before rotating`,
      EXIT.notFound,
    );
  const rotated = await (target === "auth" ? rotateAuth : rotateStorage)(Buffer.from(current, "base64").toString("utf8"));
  await cluster.call(`writing Secret ${source.secret}`, () =>
    cluster.core.replaceNamespacedSecret({
      name: source.secret,
      namespace: cluster.namespace,
      body: { ...secret, data: { ...secret.data, [source.key]: Buffer.from(rotated.value).toString("base64") } },
    }),
  );
  const restarted: string[] = [];
  if (source.viaEnv) {
    const at = new Date().toISOString();
    for (const ksvc of all.filter((k) => usesSecret(k, source.secret))) {
      await patchKnativeService(
        cluster,
        ksvc,
        { spec: { template: { metadata: { annotations: { [ROTATED_AT]: at } } } } },
        `Secret ${source.secret} is rotated, but starting a new Revision of ${ksvc.metadata.name} (so it reads the keys) failed`,
      );
      restarted.push(ksvc.metadata.name);
    }
  }

  const data = {
    namespace: cluster.namespace,
    release,
    target,
    secret: source.secret,
    key: source.key,
    kid: rotated.kid,
    kids: rotated.kids,
    dropped: rotated.dropped,
    restarted,
    ...(opts.show ? { privateKey: rotated.privateKey } : {}),
  };
  if (opts.show)
    process.stderr.write(
      `${painter(process.stderr).yellow("warning:")} the new private key is printed on stdout: whoever sees it can sign ${target === "auth" ? "session tokens" : "storage URLs"}\n`,
    );
  if (format === "json" || format === "yaml") printResult(format, data, () => []);
  else {
    process.stdout.write(
      `rotated ${target} keys in Secret ${source.secret} (${source.key}): ${rotated.kid} signs; ` +
        `${rotated.kids.length - 1} previous key(s) keep verifying${rotated.dropped.length ? `; dropped ${rotated.dropped.join(", ")}` : ""}\n`,
    );
    if (restarted.length) process.stdout.write(`new Revision started for ${restarted.join(", ")} (the keys reach it as env)\n`);
    if (opts.show)
      process.stdout.write(
        `${typeof rotated.privateKey === "string" ? rotated.privateKey : JSON.stringify(rotated.privateKey)}\n`,
      );
  }
  return EXIT.ok;
}

export async function list(cluster: Cluster, opts: { release?: string }, format: OutputFormat): Promise<number> {
  const all = await listKnativeServices(cluster);
  const release = pickRelease(all, opts.release, cluster.namespace);
  const secrets: Listed[] = [];
  for (const target of TARGETS) {
    const ksvc = all.find((k) => releaseOf(k) === release && componentOf(k) === target);
    if (!ksvc) continue; // disabled in the release's values
    const source = keySource(ksvc, target);
    const secret = await readSecret(cluster, source.secret);
    const value = secret?.data?.[source.key];
    const kids = value === undefined ? [] : kidsOf(target, Buffer.from(value, "base64").toString("utf8"));
    secrets.push({
      target,
      secret: source.secret,
      key: source.key,
      signing: kids[0] ?? null,
      kids,
      missing: value === undefined,
    });
  }
  printResult(format, { namespace: cluster.namespace, release, secrets }, () => [
    {
      columns: [
        { header: "TARGET", value: (s) => s.target },
        { header: "SECRET", value: (s) => (s.missing ? `${s.secret} (missing)` : s.secret) },
        { header: "SIGNING", value: (s) => s.signing ?? "" },
        { header: "VERIFYING", value: (s) => s.kids.slice(1).join(",") },
        { header: "KEY", value: (s) => s.key, wide: true },
      ],
      rows: secrets,
    } satisfies Table<Listed> as unknown as Table<never>,
  ]);
  return secrets.some((s) => s.missing) ? EXIT.notFound : EXIT.ok;
}

interface Listed {
  target: Target;
  secret: string;
  key: string;
  signing: string | null;
  kids: string[];
  missing: boolean;
}

function targetOf(name: string | undefined): Target {
  if (name === "auth" || name === "storage") return name;
  throw new CliError(
    name ? `cannot rotate '${name}' (one of: ${TARGETS.join(", ")})` : "keys rotate needs a target: auth or storage",
    EXIT.usage,
  );
}

/** The Secret and key the pod template takes the keys from: a mounted file, or an env secretKeyRef. */
function keySource(ksvc: KnativeService, target: Target): KeySource {
  const [fileVar, valueVar] =
    target === "auth" ? ["AUTH_SIGNING_KEYS_FILE", "AUTH_SIGNING_KEYS"] : [undefined, "STORAGE_SIGNING_KEYS"];
  const pod = ksvc.spec?.template?.spec;
  for (const container of pod?.containers ?? []) {
    const env = container.env ?? [];
    const ref = env.find((e) => e.name === valueVar)?.valueFrom?.secretKeyRef;
    if (ref) return { secret: ref.name, key: ref.key, viaEnv: true };
    const file = env.find((e) => e.name === fileVar)?.value;
    if (!file) continue;
    const mount = container.volumeMounts?.find((m) => file.startsWith(`${m.mountPath.replace(/\/$/, "")}/`));
    const volume = pod?.volumes?.find((v) => v.name === mount?.name)?.secret;
    if (mount && volume?.secretName) {
      const path = file.slice(mount.mountPath.replace(/\/$/, "").length + 1);
      const key = volume.items?.find((i) => i.path === path)?.key ?? path;
      return { secret: volume.secretName, key, viaEnv: false };
    }
  }
  throw new CliError(
    `${ksvc.metadata.name} takes its ${target} signing keys from no Secret (no ${[fileVar, valueVar].filter(Boolean).join(" or ")} backed by one)`,
    EXIT.notFound,
  );
}

const usesSecret = (ksvc: KnativeService, secret: string) =>
  (ksvc.spec?.template?.spec?.containers ?? []).some((c) =>
    (c.env ?? []).some((e) => e.valueFrom?.secretKeyRef?.name === secret),
  );

async function readSecret(cluster: Cluster, name: string): Promise<V1Secret | undefined> {
  try {
    return await cluster.call(`reading Secret ${name}`, () =>
      cluster.core.readNamespacedSecret({ name, namespace: cluster.namespace }),
    );
  } catch (err) {
    if ((err as CliError).exitCode === EXIT.notFound) return undefined;
    throw err;
  }
}

interface Rotated {
  value: string;
  kid: string;
  kids: string[];
  dropped: string[];
  privateKey: unknown;
}

/** A new ES256 JWK first; auth's own loader must accept the result, or nothing is written. */
async function rotateAuth(current: string): Promise<Rotated> {
  const { KeyRing, generateSigningJwk } = await import("../../../services/auth/src/keyring.js");
  // KeyRing.load insists on a kid and the private part of every key, so what passes has kids.
  const previous = await loadable("auth", async () => {
    await KeyRing.fromJson(current);
    return (JSON.parse(current) as { keys: Array<JWK & { kid: string }> }).keys;
  });
  const jwk = await generateSigningJwk();
  const keys = [{ ...jwk, kid: jwk.kid! }, ...previous];
  const value = JSON.stringify({ keys: keys.slice(0, KEEP) });
  await KeyRing.fromJson(value);
  return {
    value,
    kid: keys[0]!.kid,
    kids: keys.slice(0, KEEP).map((k) => k.kid),
    dropped: keys.slice(KEEP).map((k) => k.kid),
    privateKey: jwk,
  };
}

/** A new `kid:secret` first (32 random bytes, base64url: 43 characters, above storage's 32 minimum). */
async function rotateStorage(current: string): Promise<Rotated> {
  const previous = await loadable("storage", async () => parseSigningKeys(current));
  const kid = `${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(4).toString("hex")}`;
  const entry = `${kid}:${randomBytes(32).toString("base64url")}`;
  const keys = [entry, ...previous.map((k) => `${k.id}:${k.secret.toString("utf8")}`)];
  const value = keys.slice(0, KEEP).join(",");
  parseSigningKeys(value);
  const kidOf = (e: string) => e.slice(0, e.indexOf(":"));
  return { value, kid, kids: keys.slice(0, KEEP).map(kidOf), dropped: keys.slice(KEEP).map(kidOf), privateKey: entry };
}

/** The Secret's keys as the service would load them; a set it could not load is not rotated over. */
async function loadable<T>(target: Target, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    throw new CliError(
      `the ${target} key Secret holds keys ${target} cannot load (${(err as Error).message}): nothing changed`,
      EXIT.notReady,
    );
  }
}

/** Only the kids: never the key material. */
function kidsOf(target: Target, text: string): string[] {
  try {
    if (target === "storage") return parseSigningKeys(text).map((k) => k.id);
    return ((JSON.parse(text) as { keys?: Array<{ kid?: string }> }).keys ?? []).map((k) => k.kid ?? "(no kid)");
  } catch {
    return ["(unreadable)"];
  }
}
