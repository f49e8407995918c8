import { SERVICES, type SnapEvent } from "@snapmesh/events";
import { EventProof, generateEventKey, publicJwk } from "../../services/runtime/src/event-proof.ts";

const PRODUCERS = [...SERVICES, "test"];

// One key for every service under test: single-service tests only need facts that verify; the trust
// boundary between producers is tested with keys of their own (services/runtime/test/event-proof.test.ts).
const key = generateEventKey("test-key");
const trust = Object.fromEntries(PRODUCERS.map((p) => [p, { keys: [publicJwk(key)] }]));
const signer = new EventProof("test", { signingKeys: JSON.stringify({ keys: [key] }), trust: JSON.stringify(trust) });

/** The environment that gives a service under test its event keys and trust in the test producers. */
export function testEventKeysEnv(): Record<string, string> {
  return { SNAPMESH_EVENT_SIGNING_KEYS: JSON.stringify({ keys: [key] }), SNAPMESH_EVENT_TRUST: JSON.stringify(trust) };
}

/** An event as the mesh service `producer` would sign it (`source` = `/snapmesh/<producer>`). */
export function signedAs<E extends Partial<SnapEvent>>(producer: string, event: E): SnapEvent {
  return signer.sign({
    specversion: "1.0",
    time: new Date().toISOString(),
    ...event,
    source: `/snapmesh/${producer}`,
  } as SnapEvent);
}
