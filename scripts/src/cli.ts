#!/usr/bin/env node
import { parseArgs } from "node:util";
import { catalog } from "@snapmesh/events";
import type { DlqConnection } from "./cluster/dlq.js";
import { dev } from "./dev.js";
import { eventKeysSecret } from "./event-keys.js";
import { createOutput } from "./output.js";
import { UserError } from "./processes.js";
import { send } from "./send.js";
import { serviceUrl } from "./services.js";
import { listDeadLetters, localStreamNames, replayDeadLetters, tail } from "./stream.js";

const USAGE = `snapmesh <command> [options]

  dev                         run the local mesh (NATS + every service of the manifest, embedded defaults)
      --data-dir DIR          where PGlite, objects and NATS keep data (default .data)
  send <type> --data JSON     send a CloudEvent (official SDK) and print the reply event
      --service NAME | --to URL   where to (default: the service that owns the type)
      --structured            structured mode instead of binary
      --token JWT             a session token (Authorization: Bearer; also SNAPMESH_TOKEN)
      --user NAME             without a token: sign in as NAME with the dev provider first (default cli)
  events                      list the event catalog
  console [--port P]          the web console (album demo and mesh console) for a mesh already running here;
                              dead-letter replay takes SNAPMESH_CONSOLE_TOKEN (off without it)
  console permissions [--replay]   the NATS permissions the console's user needs (nats-server config, JSON):
                              read only; with --replay also what dead-letter replay writes
  tail [--all] [--dlq]        follow facts on the JetStream stream (and the dead-letter stream)
  dlq list | replay [--type T] [--dry-run]   the dead-lettered events with their reasons | re-publish
                              them and remove them from the DLQ
  keys events [--name N] [-n NS]      print a Secret with a new event-signing key per service and the
                              trust map (kubectl apply -f -; the chart's eventKeys.secretName)


On a cluster (also as \`kubectl snapmesh …\`):
  status [--release R]        Knative Services, Broker, Triggers, SinkBindings, egress, migrations, DLQ;
                              exit 1 when anything is not Ready
  doctor [--release R] [-f values.yaml]   can this cluster run the chart? each check with its fix
  prewarm <service> [--min N] [--for 30m] | --undo   raise min-scale before a peak, restore it after;
                              prewarm alone lists what is prewarmed and restores what expired
  keys rotate auth|storage [--show]   a new key; the previous one keeps verifying
  keys list                   the kids in each key Secret (never the private keys)
  logs <service> [-f]         the service's pods' logs, pretty-printed
  send <type> --data JSON --cluster   through a port-forward to the owning service (or --broker)
  dlq list|replay --cluster   the cluster's dead-letter stream, through a port-forward to NATS
  console --cluster [--port P]   the release's web console (chart: console.enabled) on 127.0.0.1:P
                              (default 8080), through a port-forward to its pod
  --kubeconfig FILE  --context NAME  -n/--namespace NS  -o/--output table|wide|json|yaml

  --json                      machine-readable output (-o json)
  Exit codes: 0 ok, 1 not ready / check failed, 2 usage, 64 bad argument, 66 not found,
              69 API server unreachable, 77 unauthorized or forbidden, 78 no kubeconfig / context
  Environment: NATS_URL, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, SNAPMESH_<SERVICE>_PORT, KUBECONFIG`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    // `logs -f` follows, as kubectl's does; for the other commands -f is --values (doctor -f values.yaml).
    args: argv[0] === "logs" ? argv.map((a) => (a === "-f" ? "--follow" : a)) : argv,
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
      kubeconfig: { type: "string" },
      context: { type: "string" },
      output: { type: "string", short: "o" },
      release: { type: "string" },
      values: { type: "string", short: "f" },
      min: { type: "string" },
      for: { type: "string" },
      undo: { type: "boolean", default: false },
      show: { type: "boolean", default: false },
      follow: { type: "boolean", default: false },
      cluster: { type: "boolean", default: false },
      broker: { type: "boolean", default: false },
      port: { type: "string" },
      replay: { type: "boolean", default: false },
    },
  });
  const out = createOutput(values.json ?? false);
  const [command, ...rest] = positionals;
  const names = localStreamNames();
  const natsUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

  const cluster = async () => {
    const { connect } = await import("./cluster/connect.js");
    return connect({ kubeconfig: values.kubeconfig, context: values.context, namespace: values.namespace });
  };
  const format = async () => (await import("./cluster/print.js")).outputFormat(values.output, values.json ?? false);

  switch (values.help ? "help" : command) {
    case "status":
      return (await import("./cluster/status.js")).status(await cluster(), { release: values.release }, await format());
    case "doctor":
      return (await import("./cluster/doctor.js")).doctor(
        await cluster(),
        { release: values.release, valuesFile: values.values },
        await format(),
      );
    case "prewarm":
      return (await import("./cluster/prewarm.js")).prewarm(
        await cluster(),
        { service: rest[0], min: values.min, for: values.for, undo: values.undo ?? false, release: values.release },
        await format(),
      );
    case "logs":
      return (await import("./cluster/logs.js")).logs(
        await cluster(),
        { service: rest[0], follow: values.follow ?? false, release: values.release },
        await format(),
      );
    case "dev":
      await dev({ dataDir: values["data-dir"]! }, out);
      return await new Promise<number>(() => {}); // runs until a signal stops it
    case "send": {
      const type = rest[0];
      if (!type)
        throw new UserError('send needs an event type, e.g. snapmesh send snapmesh.social.like.set --data \'{"photoId":"p1"}\'');
      const message = { type, data: values.data ?? "{}", structured: values.structured ?? false, source: values.source! };
      let result: Awaited<ReturnType<typeof send>>;
      if (values.cluster) {
        if (values.to) throw new UserError("--to and --cluster exclude each other");
        // A local dev session means nothing to the cluster's auth: only a token given explicitly goes along.
        const token = values.token ?? process.env.SNAPMESH_TOKEN;
        const { sendOnCluster } = await import("./cluster/send.js");
        const where = { service: values.broker ? "" : (values.service ?? ownerOf(type)), broker: values.broker ?? false };
        result = await sendOnCluster(await cluster(), { ...where, release: values.release }, (to) =>
          send({ ...message, to, ...(token ? { token } : {}) }),
        );
      } else {
        const to = values.to ?? serviceUrl(values.service ?? ownerOf(type));
        const token = values.token ?? process.env.SNAPMESH_TOKEN ?? (await devToken(values.user ?? "cli"));
        result = await send({ ...message, to, ...(token ? { token } : {}) });
      }
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
    case "console": {
      if (rest[0] === "permissions") {
        const { consoleNatsPermissions } = await import("./console/nats-permissions.js");
        out.result({ permissions: consoleNatsPermissions(names, { replay: values.replay ?? false }) });
        return 0;
      }
      const stopped = new Promise<void>((r) => {
        process.once("SIGINT", () => r());
        process.once("SIGTERM", () => r());
      });
      if (values.cluster) {
        const port = Number(values.port ?? 8080);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`--port ${values.port}: not a port number`);
        const { consoleOnCluster } = await import("./cluster/console.js");
        await consoleOnCluster(await cluster(), { release: values.release, port }, out, stopped);
        return 0;
      }
      const [{ startConsole }, { consolePage }, { meshServices }] = await Promise.all([
        import("./console/server.js"),
        import("./console/build.js"),
        import("./services.js"),
      ]);
      const publicDir = await consolePage(out);
      const web = await startConsole({
        port: Number(values.port ?? process.env.SNAPMESH_CONSOLE_PORT ?? 8080),
        natsUrl,
        names,
        services: Object.fromEntries(meshServices().map((s) => [s.name, `http://127.0.0.1:${s.port}`])),
        publicDir,
        ...(process.env.SNAPMESH_CONSOLE_TOKEN ? { operatorToken: process.env.SNAPMESH_CONSOLE_TOKEN } : {}),
        ...(process.env.EGRESS_PROXY ? { egressProxy: process.env.EGRESS_PROXY } : {}),
      });
      out.ready(`the console is at ${web.url} (Ctrl-C stops it)`, { consoleUrl: web.url });
      await stopped;
      await web.close();
      return 0;
    }
    case "tail": {
      const abort = new AbortController();
      process.once("SIGINT", () => abort.abort());
      await tail({ natsUrl, names, all: values.all ?? false, dlq: values.dlq ?? false }, (e) => out.result(e), abort.signal);
      return 0;
    }
    case "dlq": {
      const action = rest[0];
      if (action !== "list" && action !== "replay")
        throw new UserError("usage: snapmesh dlq list|replay [--type T] [--dry-run] [--cluster [--release R]]");
      const filter = values.type ? { filterType: values.type } : {};
      const dryRun = values["dry-run"] ?? false;
      const dlq = await import("./cluster/dlq.js");
      const against = async <T>(run: (c: DlqConnection) => Promise<T>) =>
        values.cluster
          ? dlq.onClusterNats(await cluster(), { release: values.release, replay: action === "replay" && !dryRun }, run)
          : run({ natsUrl, names, direct: false });
      if (action === "list") {
        dlq.printDeadLetters(await format(), await against((c) => listDeadLetters({ ...c, ...filter })));
        return 0;
      }
      const replayed = await against((c) => replayDeadLetters({ ...c, ...filter, dryRun }));
      if (out.json || values.output === "json") out.result(replayed);
      else out.step(`${dryRun ? "would replay" : "replayed"} ${replayed.length} dead-lettered event(s)`);
      return 0;
    }
    case "keys": {
      if (rest[0] === "rotate" || rest[0] === "list") {
        const keys = await import("./cluster/keys.js");
        return rest[0] === "rotate"
          ? keys.rotate(await cluster(), { target: rest[1], show: values.show ?? false, release: values.release }, await format())
          : keys.list(await cluster(), { release: values.release }, await format());
      }
      if (rest[0] !== "events")
        throw new UserError("usage: snapmesh keys events [--name NAME] [-n NAMESPACE] | keys rotate auth|storage | keys list");
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
    const code = (err as { exitCode?: unknown }).exitCode;
    process.exit(typeof code === "number" ? code : err instanceof UserError ? 2 : 1);
  },
);
