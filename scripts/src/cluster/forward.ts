import { createServer, type Socket } from "node:net";
import { PassThrough, Writable } from "node:stream";
import { PortForward, type V1Pod } from "@kubernetes/client-node";
import type { Cluster } from "./connect.js";
import { CliError, clusterError, EXIT } from "./errors.js";
import { isReady, listPods } from "./workloads.js";

/** A port of one pod: where a forward goes. */
export interface ForwardTarget {
  namespace: string;
  pod: string;
  port: number;
}

/**
 * The first Ready pod (by name, so repeated runs pick the same one) matching a selector. None at all, or none
 * Ready, is one line naming `what`, with `hint` (e.g. how to wake a service scaled to zero).
 */
export async function readyPod(cluster: Cluster, namespace: string, selector: string, what: string, hint = ""): Promise<V1Pod> {
  const pods = await listPods(cluster, namespace, selector);
  const ready = pods.find(isReady);
  if (ready) return ready;
  const why = pods.length === 0 ? "no pods" : `${pods.length} pod(s), none Ready`;
  throw new CliError(`no ready pod for ${what} in namespace '${namespace}' (${why})${hint ? `: ${hint}` : ""}`, EXIT.notReady);
}

/** `http://name.namespace.svc.cluster.local:port/path` → the Service it names (namespace defaults to `namespace`). */
export function inClusterService(
  url: string,
  namespace: string,
): { name: string; namespace: string; port: number; path: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`'${url}' is not a URL`, EXIT.usage);
  }
  const parts = parsed.hostname.split(".");
  // name, name.namespace, or name.namespace.svc[.<cluster domain>]; an IP or any other host is outside.
  const looksLikeService = !/^[0-9.]+$/.test(parsed.hostname) && (parts.length <= 2 || parts[2] === "svc") && parts[0] !== "";
  if (!looksLikeService) throw new CliError(`${url} does not name an in-cluster Service (name.namespace.svc…)`, EXIT.usage);
  const defaults: Record<string, number> = { "http:": 80, "https:": 443, "nats:": 4222, "tls:": 4222 };
  const port = parsed.port ? Number(parsed.port) : defaults[parsed.protocol];
  if (!port) throw new CliError(`${url} names no port`, EXIT.usage);
  return { name: parts[0]!, namespace: parts[1] ?? namespace, port, path: `${parsed.pathname}${parsed.search}` };
}

/** The pod and container port behind a Service's port: what kubectl port-forward svc/NAME does. */
export async function serviceBackend(
  cluster: Cluster,
  service: { name: string; namespace: string; port: number },
  what: string,
): Promise<ForwardTarget> {
  const { name, namespace, port } = service;
  const svc = await cluster.call(`reading Service '${name}' in namespace '${namespace}' (${what})`, () =>
    cluster.core.readNamespacedService({ name, namespace }),
  );
  const selector = Object.entries(svc.spec?.selector ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  if (!selector) throw new CliError(`the Service '${namespace}/${name}' (${what}) selects no pods to forward to`, EXIT.notReady);
  const servicePort = svc.spec?.ports?.find((p) => p.port === port);
  if (!servicePort) throw new CliError(`the Service '${namespace}/${name}' (${what}) has no port ${port}`, EXIT.notReady);
  const pod = await readyPod(cluster, namespace, selector, `the Service '${namespace}/${name}' (${what})`);
  const target = servicePort.targetPort ?? port;
  if (typeof target === "number") return { namespace, pod: pod.metadata!.name!, port: target };
  if (/^\d+$/.test(target)) return { namespace, pod: pod.metadata!.name!, port: Number(target) };
  const named = pod.spec?.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === target);
  if (!named)
    throw new CliError(
      `the pod '${pod.metadata!.name}' has no port named '${target}' (Service '${namespace}/${name}')`,
      EXIT.notReady,
    );
  return { namespace, pod: pod.metadata!.name!, port: named.containerPort };
}

export interface Forward {
  /** The local port on 127.0.0.1. */
  readonly port: number;
  /** What the pod's side last reported (e.g. nothing listens on the port), for a clearer failure. */
  readonly lastError: string | undefined;
  close(): Promise<void>;
}

/**
 * A local TCP server on 127.0.0.1 (at `localPort`, or any free port) whose every connection is one port-forward
 * stream to the pod (the client library's PortForward). A first stream is opened and closed before the port is
 * handed out, so RBAC, a pod without a node or an unreachable API server fail here as one line rather than as a
 * reset connection.
 */
export async function openForward(cluster: Cluster, target: ForwardTarget, localPort = 0): Promise<Forward> {
  const forward = new PortForward(cluster.kc);
  const doing = `port-forwarding to pod '${target.pod}' port ${target.port} in namespace '${target.namespace}'`;
  let lastError: string | undefined;
  const errors = new Writable({
    write(chunk, _enc, done) {
      lastError = String(chunk).trim() || lastError;
      done();
    },
  });
  const stream = async (input: NodeJS.ReadableStream, output: Writable) => {
    try {
      return (await forward.portForward(target.namespace, target.pod, [target.port], output, errors, input as never)) as Stream;
    } catch (err) {
      throw clusterError(upgradeFailure(err, target), doing, cluster.server);
    }
  };

  const probe = await stream(new PassThrough(), new Writable({ write: (_c, _e, done) => done() }));
  probe.close();

  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    // A local client that resets its connection ends that stream only.
    socket.on("error", () => socket.destroy());
    // The pod's side may still be sending when the local client has gone: drop it rather than write after end.
    const toSocket = new Writable({
      write(chunk, _enc, done) {
        if (socket.writable) socket.write(chunk);
        done();
      },
    });
    stream(socket, toSocket).then(
      (ws) => {
        ws.on("close", () => socket.end());
        socket.on("close", () => ws.close());
      },
      (err: Error) => {
        lastError = err.message;
        socket.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new CliError(`port ${localPort} on 127.0.0.1 is taken: pass another --port`, EXIT.usage)
          : err,
      ),
    );
    server.listen(localPort, "127.0.0.1", resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    get lastError() {
      return lastError;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Runs `use(localPort)` with a forward open, and closes it after. A failure while the forward was in use is
 * reported with what the pod's side said, if it said anything.
 */
export async function withForward<T>(cluster: Cluster, target: ForwardTarget, use: (port: number) => Promise<T>): Promise<T> {
  const forward = await openForward(cluster, target);
  try {
    return await use(forward.port);
  } catch (err) {
    if (forward.lastError && !(err instanceof CliError))
      throw new CliError(
        `through the port-forward to pod '${target.pod}' port ${target.port}: ${forward.lastError}`,
        EXIT.unavailable,
      );
    throw err;
  } finally {
    await forward.close();
  }
}

/** The part of the library's WebSocket used here. */
interface Stream {
  on(event: "close", listener: () => void): void;
  close(): void;
}

/**
 * The library rejects with ws's error event, whose refused upgrade says only "Unexpected server response: 403":
 * made into the status `clusterError` reads, with what the status means for a port-forward.
 */
export function upgradeFailure(err: unknown, target: ForwardTarget): unknown {
  const cause = (err as { error?: unknown }).error ?? err;
  const status = /Unexpected server response: (\d+)/.exec(String((cause as Error)?.message ?? ""))?.[1];
  if (!status) return cause;
  const code = Number(status);
  const meaning: Record<number, string> = {
    403: `this user may not create pods/portforward in namespace '${target.namespace}'`,
    404: `the pod '${target.pod}' is gone`,
    400: `the pod '${target.pod}' cannot be reached through its node (not running, or no node yet)`,
  };
  return { code, body: { message: meaning[code] ?? `HTTP ${code}` } };
}
