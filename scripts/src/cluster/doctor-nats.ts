// NATS as the services will dial it: `nats.url` (comma-separated servers, as the runtime splits it). Only a
// cluster Service name can be checked from outside the cluster, by the Service behind it.
import { type Check, type DoctorContext, fail, type Probe, pass, warn } from "./doctor-probe.js";
import { text } from "./doctor-values.js";

const SERVICE_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?\.?$/;

export function natsProbes(ctx: DoctorContext): Probe[] {
  const servers = text(ctx.values, "nats.url")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (servers.length === 0)
    return [staticProbe(fail("nats", "nats.url is empty", "--set nats.url=nats://nats.nats.svc.cluster.local:4222"))];
  return servers.map((server) => natsProbe(ctx, server));
}

function natsProbe(ctx: DoctorContext, server: string): Probe {
  let url: URL;
  try {
    url = new URL(server.includes("://") ? server : `nats://${server}`);
  } catch {
    return staticProbe(
      fail(
        "nats",
        "nats.url has a server that is not a URL",
        "--set nats.url=nats://<service>.<namespace>.svc.cluster.local:4222",
      ),
    );
  }
  // Shown without any user:password the URL may carry.
  const port = Number(url.port || 4222);
  const name = `nats ${url.hostname}:${port}`;
  const match = SERVICE_HOST.exec(url.hostname);
  if (!match)
    return staticProbe(
      warn(
        name,
        "cannot check from here: not a cluster Service name (<service>.<namespace>.svc[.cluster.local])",
        `from a pod in the cluster: nats server check connection -s nats://${url.hostname}:${port} (nats-box)`,
      ),
    );
  const [service, namespace] = [match[1]!, match[3]!];
  const install = `install NATS with JetStream as Service ${namespace}/${service} (https://docs.nats.io/running-a-nats-service/nats-kubernetes), or set nats.url`;
  return {
    name,
    needs: `get services in ${namespace}`,
    async run(read) {
      const found = await read(`reading Service ${namespace}/${service}`, () =>
        ctx.cluster.core.readNamespacedService({ name: service, namespace }),
      );
      if (!found) return [fail(name, `Service ${namespace}/${service} not found`, install)];
      const ports = (found.spec?.ports ?? []).map((p) => p.port);
      if (ports.length === 0) return [fail(name, `Service ${namespace}/${service} has no ports`, install)];
      if (!ports.includes(port))
        return [
          fail(
            name,
            `Service ${namespace}/${service} has port${ports.length > 1 ? "s" : ""} ${ports.join(", ")}, not ${port}`,
            `--set nats.url=nats://${url.hostname}:${ports[0]}`,
          ),
        ];
      return [pass(name, `Service ${namespace}/${service} has port ${port}`)];
    },
  };
}

/** A check decided from the values alone, with no API call. */
function staticProbe(check: Check): Probe {
  return { name: check.name, needs: "", run: async () => [check] };
}
