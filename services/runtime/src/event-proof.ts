import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomUUID,
  sign,
  verify,
} from "node:crypto";
import { readFileSync } from "node:fs";
import type { SnapEvent } from "@snapmesh/events";
import { AppError } from "./errors.js";

/**
 * Proof of where an event came from: the CloudEvents verifiability extension (DSSE v1.0.2 envelope in the
 * `dssematerial` attribute). Each mesh service signs the facts it emits with its own Ed25519 key; a consumer
 * verifies against the public keys it trusts for the producer named by the event's `source`
 * (`/snapmesh/<producer>`). The proof travels inside the event, so it holds on every transport: JetStream,
 * a Knative Broker/Trigger delivery, the HTTP sink, a dead-letter replay.
 */
export const DSSE_PAYLOAD_TYPE = "https://cloudevents.io/verifiability/dsse/v0.1";
export const PROOF_ATTRIBUTE = "dssematerial";
const SIGNED_EXTENSIONS = "signedextattrs";
const CORE = new Set(["id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"]);
const PRODUCER_SOURCE = /^\/snapmesh\/([a-z0-9][a-z0-9-]{0,62})$/;

export type PrivateJwk = JsonWebKey & { kid: string };
export type PublicJwks = { keys: Array<JsonWebKey & { kid: string }> };
/** Producer name → the public keys that may sign its events. */
export type TrustMap = Record<string, PublicJwks>;

interface LoadedKey {
  kid: string;
  key: KeyObject;
}

/** The producer a `source` names (`/snapmesh/storage` → `storage`), or undefined for any other source. */
export function producerOf(source: string): string | undefined {
  return PRODUCER_SOURCE.exec(source)?.[1];
}

/** The 32-byte digest the signature covers (verifiability extension, "Signature" protocol, step 4–5). */
export function verificationMaterial(event: SnapEvent, signedExtensions: string[] = []): Buffer {
  const digest = (value: string | Buffer) => createHash("sha256").update(value).digest();
  const text = (value: unknown) => (value === undefined || value === null ? "" : String(value));
  const parts = [
    digest(text(event.id)),
    digest(text(event.source)),
    digest(text(event.specversion)),
    digest(text(event.type)),
    // JSON data without a declared type is JSON: the HTTP binary binding would declare it on the way.
    digest(text(event.datacontenttype ?? (event.data === undefined ? undefined : "application/json"))),
    digest(text(event.dataschema)),
    digest(text(event.subject)),
    digest(normaliseTime(event.time)),
    digest(event.data === undefined ? "" : canonicalJson(event.data)),
  ];
  for (const name of signedExtensions) parts.push(digest(name), digest(text(event[name])));
  return digest(Buffer.concat(parts));
}

/**
 * Event data as JSON with object keys sorted: a broker that re-encodes the JSON (Go maps sort keys,
 * whitespace changes) must not break the signature.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

// RFC 3339 in UTC at second precision: SDKs re-serialise fractions differently (".120Z" vs ".12Z").
function normaliseTime(time: unknown): string {
  if (typeof time !== "string" || time === "") return "";
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return time;
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** DSSE pre-authentication encoding (DSSE protocol v1.0.2). */
function pae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

interface Envelope {
  payload: string;
  payloadType: string;
  signatures: Array<{ keyid?: string; sig: string }>;
}

/** A private JWK as a key that signEvent takes. */
export function signingKey(jwk: PrivateJwk): LoadedKey {
  return parseKeySet(JSON.stringify({ keys: [jwk] }), "private", "the key")[0]!;
}

/** Signs an event: the same event with `dssematerial` set. */
export function signEvent(event: SnapEvent, key: LoadedKey): SnapEvent {
  const { [PROOF_ATTRIBUTE]: _old, [SIGNED_EXTENSIONS]: _exts, ...unsigned } = event;
  const body = verificationMaterial(unsigned as SnapEvent);
  const envelope: Envelope = {
    payload: body.toString("base64"),
    payloadType: DSSE_PAYLOAD_TYPE,
    signatures: [{ keyid: key.kid, sig: sign(null, pae(DSSE_PAYLOAD_TYPE, body), key.key).toString("base64") }],
  };
  return { ...unsigned, [PROOF_ATTRIBUTE]: Buffer.from(JSON.stringify(envelope)).toString("base64") };
}

export type ProofFailure =
  | "unsigned"
  | "producer_unknown"
  | "material_corrupt"
  | "signature_invalid"
  | "event_modified"
  | "too_old";

const FAILURE_CODES: Record<ProofFailure, string> = {
  unsigned: "event_unsigned",
  producer_unknown: "event_producer_unknown",
  material_corrupt: "event_proof_corrupt",
  signature_invalid: "event_signature_invalid",
  event_modified: "event_modified",
  too_old: "event_too_old",
};

/** 401 for an event with no proof at all, 403 for a proof that fails. */
export class ProofError extends AppError {
  constructor(
    readonly reason: ProofFailure,
    message: string,
  ) {
    super(reason === "unsigned" ? 401 : 403, FAILURE_CODES[reason], message);
    this.name = "ProofError";
  }
}

/** Verifies an event's proof; returns the proven producer. Throws a ProofError (401/403) for anything else. */
export function verifyEvent(event: SnapEvent, trusted: (producer: string) => LoadedKey[]): string {
  const material = event[PROOF_ATTRIBUTE];
  if (typeof material !== "string" || material === "") {
    throw new ProofError("unsigned", `${event.type} must carry the producing service's signature (${PROOF_ATTRIBUTE})`);
  }
  const producer = producerOf(event.source);
  const keys = producer ? trusted(producer) : [];
  if (!producer || keys.length === 0) {
    throw new ProofError("producer_unknown", `no trusted keys for the source '${event.source}'`);
  }
  let envelope: Envelope;
  try {
    envelope = JSON.parse(Buffer.from(material, "base64").toString("utf8")) as Envelope;
  } catch {
    throw new ProofError("material_corrupt", `${PROOF_ATTRIBUTE} is not a base64 DSSE envelope`);
  }
  if (
    envelope?.payloadType !== DSSE_PAYLOAD_TYPE ||
    typeof envelope.payload !== "string" ||
    !Array.isArray(envelope.signatures)
  ) {
    throw new ProofError("material_corrupt", `${PROOF_ATTRIBUTE} is not a DSSE envelope of ${DSSE_PAYLOAD_TYPE}`);
  }
  const body = Buffer.from(envelope.payload, "base64");
  if (body.length !== 32) throw new ProofError("material_corrupt", "the signed payload is not a 32-byte digest");
  const signed = pae(DSSE_PAYLOAD_TYPE, body);
  const valid = envelope.signatures.some((s) => {
    const key = keys.find((k) => k.kid === s?.keyid);
    return key !== undefined && typeof s.sig === "string" && verify(null, signed, key.key, Buffer.from(s.sig, "base64"));
  });
  if (!valid) throw new ProofError("signature_invalid", `the signature is not one of ${producer}'s trusted keys`);
  const extensions = signedExtensionList(event);
  if (!verificationMaterial(event, extensions).equals(body)) {
    throw new ProofError("event_modified", "the event does not match what its producer signed");
  }
  return producer;
}

function signedExtensionList(event: SnapEvent): string[] {
  const value = event[SIGNED_EXTENSIONS];
  if (value === undefined || value === "") return [];
  const names = String(value).split(",");
  const bad = names.some((n) => n === "" || CORE.has(n) || n === PROOF_ATTRIBUTE || n === SIGNED_EXTENSIONS);
  if (bad || new Set(names).size !== names.length) {
    throw new ProofError("material_corrupt", `${SIGNED_EXTENSIONS} breaks the extension's rules`);
  }
  return names;
}

export interface EventProofSources {
  /** This service's private keys, `{"keys":[…]}` (the first signs), inline or as a file that is re-read. */
  signingKeys?: string | undefined;
  signingKeysFile?: string | undefined;
  /** `{"<producer>":{"keys":[public JWKs]}}`, inline or as a file that is re-read. */
  trust?: string | undefined;
  trustFile?: string | undefined;
}

/**
 * One service's side of event proof: its signing keys (first signs, every one verifies, so rotation is
 * "add the new key first, drop the old one after the longest redelivery") and the producers it trusts.
 * A service always trusts its own keys.
 */
export class EventProof {
  private signing: LoadedKey[] = [];
  private trust = new Map<string, LoadedKey[]>();

  constructor(
    readonly service: string,
    private readonly sources: EventProofSources,
  ) {
    this.reload();
  }

  static configured(sources: EventProofSources): boolean {
    return Boolean(sources.signingKeys || sources.signingKeysFile);
  }

  /** Reads the keys again (files may have been rotated); throws on a broken set and keeps the old one. */
  reload(): void {
    const signingJson = this.sources.signingKeysFile
      ? readFileSync(this.sources.signingKeysFile, "utf8")
      : this.sources.signingKeys;
    if (!signingJson) throw new Error("no event signing keys (SNAPMESH_EVENT_SIGNING_KEYS or SNAPMESH_EVENT_SIGNING_KEYS_FILE)");
    const signing = parseKeySet(signingJson, "private", "the event signing key set");
    const trustJson = this.sources.trustFile ? readFileSync(this.sources.trustFile, "utf8") : this.sources.trust;
    const trust = trustJson ? parseTrustMap(trustJson) : new Map<string, LoadedKey[]>();
    const own = signing.map((k) => ({ kid: k.kid, key: createPublicKey(k.key) }));
    trust.set(this.service, [...own, ...(trust.get(this.service) ?? []).filter((k) => !own.some((o) => o.kid === k.kid))]);
    this.signing = signing;
    this.trust = trust;
  }

  /** Re-reads key files every `seconds`; a broken file keeps the keys in use and is reported. */
  watch(seconds: number, onError: (err: Error) => void): () => void {
    if (!this.sources.signingKeysFile && !this.sources.trustFile) return () => {};
    const timer = setInterval(() => {
      try {
        this.reload();
      } catch (err) {
        onError(err as Error);
      }
    }, seconds * 1000);
    timer.unref();
    return () => clearInterval(timer);
  }

  sign(event: SnapEvent): SnapEvent {
    const key = this.signing[0];
    if (!key) throw new Error("no event signing key loaded");
    return signEvent(event, key);
  }

  /** The proven producer of a signed event; throws a ProofError for an unsigned or forged one. */
  verify(event: SnapEvent): string {
    return verifyEvent(event, (producer) => this.trust.get(producer) ?? []);
  }
}

/**
 * Verifies events against a trust map alone, `{"<producer>":{"keys":[public JWKs]}}`: for a reader of facts that
 * signs nothing (the console). Returns the proven producer; throws a ProofError like EventProof.verify.
 */
export function trustVerifier(trustJson: string): (event: SnapEvent) => string {
  const trust = parseTrustMap(trustJson);
  return (event) => verifyEvent(event, (producer) => trust.get(producer) ?? []);
}

function parseTrustMap(json: string): Map<string, LoadedKey[]> {
  const trust = new Map<string, LoadedKey[]>();
  const parsed = parseJsonObject(json, "the event trust map") as Record<string, unknown>;
  for (const [producer, set] of Object.entries(parsed)) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(producer))
      throw new Error(`the event trust map names an invalid producer '${producer}'`);
    trust.set(producer, parseKeySet(JSON.stringify(set), "public", `the trusted keys of '${producer}'`));
  }
  return trust;
}

/** A new private Ed25519 JWK with a kid. */
export function generateEventKey(kid: string = randomUUID()): PrivateJwk {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { ...privateKey.export({ format: "jwk" }), kid, alg: "EdDSA" } as PrivateJwk;
}

/** The public JWK of a private one. */
export function publicJwk(jwk: PrivateJwk): JsonWebKey & { kid: string } {
  const exported = createPublicKey(createPrivateKey({ key: jwk, format: "jwk" })).export({ format: "jwk" });
  return { ...exported, kid: jwk.kid, alg: "EdDSA", use: "sig" };
}

function parseKeySet(json: string, kind: "private" | "public", what: string): LoadedKey[] {
  const parsed = parseJsonObject(json, what) as { keys?: unknown };
  if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) throw new Error(`${what} has no keys`);
  return parsed.keys.map((jwk: JsonWebKey & { kid?: string }) => {
    if (!jwk || typeof jwk.kid !== "string" || jwk.kid === "") throw new Error(`each key in ${what} needs a kid`);
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519") throw new Error(`key '${jwk.kid}' in ${what} is not an Ed25519 (OKP) key`);
    if (kind === "private" && !jwk.d) throw new Error(`key '${jwk.kid}' in ${what} has no private part`);
    const key =
      kind === "private"
        ? createPrivateKey({ key: jwk, format: "jwk" })
        : createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
    return { kid: jwk.kid, key };
  });
}

function parseJsonObject(json: string, what: string): object {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error(`${what} is not valid JSON`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`${what} must be a JSON object`);
  return parsed;
}
