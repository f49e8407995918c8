import { isolatedEnv } from "../../../test/support/service.ts";
import { type BaseConfig, baseConfigSchema, parseConfig } from "../src/internal.ts";

export { eventually, natsConnect, streamEvents, streamMessages } from "../../../test/support/service.ts";

/** A config on the test servers with its own database and its own stream and subjects. */
export async function isolatedConfig(
  overrides: Record<string, string> = {},
): Promise<BaseConfig & { env: Record<string, string> }> {
  const env = await isolatedEnv(overrides);
  return { ...parseConfig(baseConfigSchema, env), env };
}

/** How many facts of `type` the relay published successfully, from a Prometheus exposition. */
export function publishedOk(metricsText: string, type: string): number {
  let total = 0;
  for (const [, labels, value] of metricsText.matchAll(/^snapmesh_events_published_total\{([^}]*)\} (\d+)$/gm)) {
    if (labels!.includes(`type="${type}"`) && labels!.includes('outcome="ok"')) total += Number(value);
  }
  return total;
}
