#!/usr/bin/env node
import { parseArgs } from "node:util";
import { catalog } from "@snapmesh/events";
import { dev } from "./dev.js";
import { eventKeysSecret } from "./event-keys.js";
import { createOutput } from "./output.js";
import { UserError } from "./processes.js";
import { send } from "./send.js";
import { serviceUrl } from "./services.js";
import { replayDeadLetters, tail } from "./stream.js";

const USAGE = `snapmesh <command> [options]

  dev                         run the local mesh (NATS + the four services on embedded defaults)
      --data-dir DIR          where PGlite, objects and NATS keep data (default .data)
  send <type> --data JSON     send a CloudEvent (official SDK) and print the reply event
      --service NAME | --to URL   where to (default: the service that owns the type)
      --structured            structured mode instead of binary
      --token JWT             a session token (Authorization: Bearer; also SNAPMESH_TOKEN)
      --user NAME             without a token: sign in as NAME with the dev provider first (default cli)
  events                      list the event catalog
  tail [--all] [--dlq]        follow facts on the JetStream stream (and the dead-letter stream)
  dlq replay [--type T] [--dry-run]   re-publish dead-lettered events and remove them from the DLQ
  keys events [--name N] [-n NS]      print a Secret with a new event-signing key per service and the
                              trust map (kubectl apply -f -; the chart's eventKeys.secretName)

  --json                      machine-readable output
  Environment: NATS_URL, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, SNAPMESH_<SERVICE>_PORT`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      "data-dir": { type: "string", default: ".data" },
      data: { type: "string" },
      to: { type: "string" },
      service: { type: "string" },
      structured: { type: "boolean", default: false },
      token: { type: "string" },
      user: { type: "string" },
      source: { type: "string", default: "/snapmesh/cli" },
      all: { type: "boolean", default: false },
      dlq: { type: "boolean", default: false },
      type: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      name: { type: "string" },
      namespace: { type: "string", short: "n" },
    },
  });
  const out = createOutput(values.json ?? false);
  const [command, ...rest] = positionals;
  const names = {
    stream: process.env.EVENTS_STREAM ?? "SNAPMESH_EVENTS",
    subjectPrefix: process.env.EVENTS_SUBJECT_PREFIX ?? "events",
  };
  const natsUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

  switch (values.help ? "help" : command) {
    case "dev":
      await dev({ dataDir: values["data-dir"]! }, out);
      return await new Promise<number>(() => {}); // runs until a signal stops it
    case "send": {
      const type = rest[0];
      if (!type)
        throw new UserError('send needs an event type, e.g. snapmesh send snapmesh.social.like.set --data \'{"photoId":"p1"}\'');
      const to = values.to ?? serviceUrl(values.service ?? ownerOf(type));
      const token = values.token ?? process.env.SNAPMESH_TOKEN ?? (await devToken(values.user ?? "cli"));
      const result = await send({
        type,
        data: values.data ?? "{}",
        to,
        structured: values.structured ?? false,
        source: values.source!,
        ...(token ? { token } : {}),
      });
      out.result(result.reply ?? result);
      return result.status < 400 ? 0 : 1;
    }
    case "events":
      if (out.json)
        out.result(catalog.map((d) => ({ type: d.type, kind: d.kind, service: d.service, description: d.description })));
      else
        for (const d of catalog)
          process.stdout.write(`${d.kind.padEnd(8)} ${d.service.padEnd(11)} ${d.type.padEnd(40)} ${d.description}\n`);
      return 0;
    case "tail": {
      const abort = new AbortController();
      process.once("SIGINT", () => abort.abort());
      await tail({ natsUrl, names, all: values.all ?? false, dlq: values.dlq ?? false }, (e) => out.result(e), abort.signal);
      return 0;
    }
    case "dlq": {
      if (rest[0] !== "replay") throw new UserError("usage: snapmesh dlq replay [--type T] [--dry-run]");
      const replayed = await replayDeadLetters({
        natsUrl,
        names,
        dryRun: values["dry-run"] ?? false,
        ...(values.type ? { filterType: values.type } : {}),
      });
      if (out.json) out.result(replayed);
      else out.step(`${values["dry-run"] ? "would replay" : "replayed"} ${replayed.length} dead-lettered event(s)`);
      return 0;
    }
    case "keys": {
      if (rest[0] !== "events") throw new UserError("usage: snapmesh keys events [--name NAME] [-n NAMESPACE]");
      process.stdout.write(eventKeysSecret(values.name ?? "snapmesh-event-keys", values.namespace));
      return 0;
    }
    case "help":
    case undefined:
      process.stdout.write(`${USAGE}\n`);
      return command || values.help ? 0 : 2;
    default:
      throw new UserError(`unknown command '${command}'\n\n${USAGE}`);
  }
}

/** On the local mesh (SNAPMESH_DEV_AUTH=1) a dev session; elsewhere nothing, and the event goes without a token. */
async function devToken(userId: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${serviceUrl("auth")}/v1/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ provider: "dev", userId }),
      signal: AbortSignal.timeout(3_000),
    });
    return res.ok ? ((await res.json()) as { token: string }).token : undefined;
  } catch {
    return undefined;
  }
}

function ownerOf(type: string): string {
  const def = catalog.find((d) => d.type === type);
  if (def) return def.service;
  const guess = type.split(".")[1];
  if (guess === "sharecode") return "share-code";
  if (guess) return guess;
  throw new UserError(`cannot tell which service handles '${type}': pass --service or --to`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const message = err instanceof UserError || err?.name === "TypeError" ? err.message : (err as Error).stack;
    process.stderr.write(`snapmesh: ${message}\n`);
    process.exit(err instanceof UserError ? 2 : 1);
  },
);
