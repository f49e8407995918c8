// A kubelet for the test API server, which has none: a Node whose address is a loopback HTTPS server that
// serves what the API server proxies to a kubelet, container logs and port-forward streams. No controllers
// run, so the pods the tests put on this Node are never started; their logs and ports are whatever the test
// says here. The wire is the real one: the CLI talks to the API server, the API server to this server.
import { execFile } from "node:child_process";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { WebSocketServer } from "ws";
import type { Kubernetes } from "../support/kubernetes.ts";
import { scratchDir } from "../support/service.ts";

export interface FakeKubelet {
  /** The Node's name: put it in a pod's spec.nodeName. */
  node: string;
  /** Appends a line to a container's log (also to a log being followed). */
  log(namespace: string, pod: string, container: string, line: string): void;
  /** Ends a followed log, as when the container exits. */
  endLog(namespace: string, pod: string, container: string): void;
  /** How many requests are following a container's log now. */
  followers(namespace: string, pod: string, container: string): number;
  /** Makes the kubelet refuse a container's log with this status and message (as for a container not started). */
  refuseLog(namespace: string, pod: string, container: string, status: number, message: string): void;
  /** Where a port-forward to a pod's port is connected (none: the kubelet reports that nothing listens). */
  route(namespace: string, pod: string, port: number, to: { host: string; port: number }): void;
  /** What the API server asked, e.g. `logs ns/pod/container follow=true`, `portforward ns/pod 8080`. */
  requests: string[];
  stop(): Promise<void>;
}

export async function fakeKubelet(kube: Kubernetes): Promise<FakeKubelet> {
  const dir = scratchDir("kubelet");
  // The API server does not verify a kubelet's certificate unless told a CA: any self-signed one will do.
  await promisify(execFile)("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1"],
  ]);
  const logs = new Map<string, string[]>();
  const refused = new Map<string, { status: number; message: string }>();
  const routes = new Map<string, { host: string; port: number }>();
  const events = new EventEmitter();
  const requests: string[] = [];

  const server: Server = createServer(
    { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) },
    (req, res) => {
      const url = new URL(req.url ?? "/", "https://kubelet");
      const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (!match) {
        res.writeHead(404).end("not a kubelet path the fake serves");
        return;
      }
      const key = match.slice(1).join("/");
      const follow = url.searchParams.get("follow") === "true";
      requests.push(`logs ${key}${follow ? " follow=true" : ""}`);
      const refusal = refused.get(key);
      if (refusal) {
        res.writeHead(refusal.status, { "content-type": "text/plain" }).end(refusal.message);
        return;
      }
      const tail = url.searchParams.get("tailLines");
      const lines = logs.get(key) ?? [];
      res.writeHead(200, { "content-type": "text/plain" });
      const shown = tail === null ? lines : Number(tail) === 0 ? [] : lines.slice(-Number(tail));
      for (const l of shown) res.write(`${l}\n`);
      if (!follow) {
        res.end();
        return;
      }
      const onLine = (line: string) => res.write(`${line}\n`);
      const onEnd = () => res.end();
      events.on(`line:${key}`, onLine);
      events.once(`end:${key}`, onEnd);
      res.on("close", () => {
        events.off(`line:${key}`, onLine);
        events.off(`end:${key}`, onEnd);
      });
    },
  );

  // Port-forward over WebSocket as the kubelet speaks it: per port a data and an error channel, each opening
  // with the port number (2 bytes, little-endian); a frame's first byte is its channel.
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (p) => (p.has("v4.channel.k8s.io") ? "v4.channel.k8s.io" : false),
  });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "https://kubelet");
    const match = /^\/portForward\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    const port = Number(url.searchParams.get("port"));
    if (!match || !port) {
      socket.destroy();
      return;
    }
    const key = `${match[1]}/${match[2]}`;
    requests.push(`portforward ${key} ${port}`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const frame = (channel: number, data: Buffer) => ws.send(Buffer.concat([Buffer.from([channel]), data]));
      const portBytes = Buffer.alloc(2);
      portBytes.writeUInt16LE(port);
      frame(0, portBytes);
      frame(1, portBytes);
      const to = routes.get(`${key}:${port}`);
      const fail = (why: string) => {
        frame(1, Buffer.from(`error forwarding port ${port} to pod ${match[2]}: ${why}`));
        ws.close();
      };
      if (!to) {
        fail(`dial tcp4 127.0.0.1:${port}: connect: connection refused`);
        return;
      }
      const tcp = tcpConnect(to.port, to.host);
      tcp.on("error", (err) => fail(err.message));
      tcp.on("data", (d: Buffer) => frame(0, d));
      tcp.on("end", () => ws.close());
      ws.on("message", (data: Buffer) => {
        if (data[0] === 0) tcp.write(data.subarray(1));
      });
      ws.on("close", () => tcp.end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const kubeletPort = (server.address() as { port: number }).port;

  const node = `kubelet-${kubeletPort}`;
  await kube.kubectl(["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: node } }));
  await kube.kubectl([
    ...["patch", "node", node, "--subresource=status", "--type=merge", "-p"],
    JSON.stringify({
      status: {
        addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
        daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
      },
    }),
  ]);

  return {
    node,
    requests,
    log(namespace, pod, container, line) {
      const key = `${namespace}/${pod}/${container}`;
      logs.set(key, [...(logs.get(key) ?? []), line]);
      events.emit(`line:${key}`, line);
    },
    endLog: (namespace, pod, container) => void events.emit(`end:${namespace}/${pod}/${container}`),
    followers: (namespace, pod, container) => events.listenerCount(`line:${namespace}/${pod}/${container}`),
    refuseLog: (namespace, pod, container, status, message) =>
      void refused.set(`${namespace}/${pod}/${container}`, { status, message }),
    route: (namespace, pod, port, to) => void routes.set(`${namespace}/${pod}:${port}`, to),
    async stop() {
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
