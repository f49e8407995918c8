// The console's process entry, as its image runs it (`node /app/bin/main.mjs`, the chart's `console.enabled`): the
// page from ../public beside the bundle, configured from the environment. Importing it does nothing unless it is
// the process's script (the image's build imports it to fill the compile cache).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { baseConfigSchema, isProcessEntry, loadConfig, trustVerifier } from "@snapmesh/runtime/internal";
import { z } from "zod";
import { startConsole } from "./server.js";

const serviceList = z
  .string()
  .transform((value, ctx) => {
    const entries = value.split(",").map((pair) => pair.trim().split("="));
    for (const [name, url] of entries) {
      if (!name || !/^[a-z][a-z0-9-]*$/.test(name) || !url || !URL.canParse(url) || !/^https?:/.test(url)) {
        ctx.addIssue({ code: "custom", message: `'${[name, url].filter(Boolean).join("=")}' is not name=http(s)://url` });
        return z.NEVER;
      }
    }
    return Object.fromEntries(entries) as Record<string, string>;
  })
  .describe("services by name: name=url,name=url");

export const consoleConfigSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().default("0.0.0.0"),
    NATS_URL: z.string().regex(/^(nats|tls):\/\//, "a nats:// or tls:// URL"),
    // The stream names as the services read them.
    ...baseConfigSchema.pick({ EVENTS_STREAM: true, EVENTS_SUBJECT_PREFIX: true }).shape,
    CONSOLE_SERVICES: serviceList,
    CONSOLE_PUBLIC_URLS: serviceList.optional(),
    CONSOLE_OPERATOR_TOKEN_FILE: z.string().optional(),
    CONSOLE_FACTS: z.enum(["stream", "trigger"]).default("stream"),
    SNAPMESH_EVENT_TRUST_FILE: z.string().optional(),
    CONSOLE_REPLAY_URL: z.url({ protocol: /^https?$/ }).optional(),
    EGRESS_PROXY: z.string().optional(),
    CONSOLE_PUBLIC_DIR: z.string().default(fileURLToPath(new URL("../public", import.meta.url))),
  })
  .refine((c) => c.CONSOLE_FACTS === "stream" || c.SNAPMESH_EVENT_TRUST_FILE, {
    path: ["SNAPMESH_EVENT_TRUST_FILE"],
    message: "required with CONSOLE_FACTS=trigger: facts from the Broker are shown only with a valid producer signature",
  });

/** An operator token of fewer than 16 characters would be guessable; refused rather than used. */
function operatorToken(file: string | undefined): string | undefined {
  if (!file) return undefined;
  const token = readFileSync(file, "utf8").trim();
  if (token.length < 16) throw new Error(`the operator token in ${file} is shorter than 16 characters`);
  return token;
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfig(consoleConfigSchema, env);
  const token = operatorToken(config.CONSOLE_OPERATOR_TOKEN_FILE);
  const web = await startConsole({
    port: config.PORT,
    host: config.HOST,
    natsUrl: config.NATS_URL,
    names: { stream: config.EVENTS_STREAM, subjectPrefix: config.EVENTS_SUBJECT_PREFIX },
    services: config.CONSOLE_SERVICES,
    ...(config.CONSOLE_PUBLIC_URLS ? { publicUrls: config.CONSOLE_PUBLIC_URLS } : {}),
    publicDir: config.CONSOLE_PUBLIC_DIR,
    ...(token ? { operatorToken: token } : {}),
    ...(config.EGRESS_PROXY ? { egressProxy: config.EGRESS_PROXY } : {}),
    ...(config.CONSOLE_REPLAY_URL ? { replayUrl: config.CONSOLE_REPLAY_URL } : {}),
    facts:
      config.CONSOLE_FACTS === "trigger"
        ? { from: "trigger", verify: trustVerifier(readFileSync(config.SNAPMESH_EVENT_TRUST_FILE!, "utf8")) }
        : { from: "stream" },
  });
  process.stdout.write(
    `${JSON.stringify({ level: "info", time: new Date().toISOString(), name: "console", url: web.url, facts: config.CONSOLE_FACTS, replay: token ? "operator token" : "disabled", msg: "listening" })}\n`,
  );
  const stop = () => {
    void web.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

if (isProcessEntry(import.meta.url)) await main();
