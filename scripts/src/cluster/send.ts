/*
 * `snapmesh send <type> --data JSON --cluster [--service S | --broker] [--release R]` prints what `send`
 * prints locally: the reply CloudEvent as JSON ({ specversion, id, type, source, data, … }), or
 * { "status": 202 } when the answer has no event (the Broker's), or { "status": 4xx/5xx, "error": … }
 * with exit 1.
 */
import type { Cluster } from "./connect.js";
import { withForward } from "./forward.js";
import { brokerTarget, serviceTarget } from "./targets.js";

/**
 * `send --cluster`: `post(url)` runs against a local port forwarded to a Ready pod of the owning service, or
 * with `broker`, to a pod of the Broker's ingress (the URL then carries the Broker's path).
 */
export async function sendOnCluster<T>(
  cluster: Cluster,
  opts: { service: string; broker: boolean; release: string | undefined },
  post: (url: string) => Promise<T>,
): Promise<T> {
  const where = opts.broker
    ? await brokerTarget(cluster, opts.release)
    : await serviceTarget(cluster, opts.service, opts.release);
  if (process.stderr.isTTY)
    process.stderr.write(`forwarding to ${where.what}: pod ${where.target.pod} port ${where.target.port}\n`);
  return withForward(cluster, where.target, (port) => post(`http://127.0.0.1:${port}${where.path}`));
}
