// A service's start, run once at image build so that V8 compiles what a start runs and the image's code cache (written
// by scripts/src/service-loader.mjs) holds it: functions V8 compiles only when first called are otherwise compiled on
// every cold start. Nothing is reachable at build time, so this is a bare service of the runtime against NATS and
// PostgreSQL addresses that refuse connections: it parses a configuration, opens its pool, tries NATS, listens on a
// loopback port, answers its probes, a scrape and a CloudEvent, and stops.
import { request } from "node:http";
import { type BaseConfig, baseConfigSchema, parseConfig } from "./config.js";
import { generateEventKey } from "./event-proof.js";
import { createLogger } from "./logger.js";
import { Service } from "./service.js";

/** Nothing listens on port 1 of the loopback: connections are refused at once. */
const REFUSED = "127.0.0.1:1";

export async function warmUp(): Promise<void> {
  const config: BaseConfig = parseConfig(baseConfigSchema, {
    DATABASE_URL: `postgres://warm-up:warm-up@${REFUSED}/warm-up`,
    NATS_URL: `nats://${REFUSED}`,
    MIGRATE_ON_START: "0",
    SHUTDOWN_TIMEOUT_MS: "1000",
    SNAPMESH_EVENT_SIGNING_KEYS: JSON.stringify({ keys: [generateEventKey("warm-up")] }),
  });
  const service = new Service({
    name: "warm-up",
    schema: "warm_up",
    config,
    needs: ["nats"],
    logger: createLogger("warm-up", "info", "/dev/null"),
  });
  try {
    await service.start({ port: 0, host: "127.0.0.1" });
    const port = service.port!;
    for (const path of ["/healthz", "/readyz", "/metrics", "/v1/nothing"]) await call(port, "GET", path);
    await call(port, "POST", "/", JSON.stringify({ specversion: "1.0", id: "1", source: "/warm-up", type: "warm.up" }), {
      "content-type": "application/cloudevents+json",
    });
    await call(port, "POST", "/", "{}", {
      "content-type": "application/json",
      "ce-specversion": "1.0",
      "ce-id": "2",
      "ce-source": "/warm-up",
      "ce-type": "warm.up",
    });
  } finally {
    await service.stop();
  }
}

function call(port: number, method: string, path: string, body = "", headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.end(body);
  });
}
