import { isolatedEnv } from "../../../test/support/service.ts";
import { type BaseConfig, baseConfigSchema, parseConfig } from "../src/index.ts";

export { eventually, natsConnect, streamEvents, streamMessages } from "../../../test/support/service.ts";

/** A config on the test servers with its own database and its own stream and subjects. */
export async function isolatedConfig(
  overrides: Record<string, string> = {},
): Promise<BaseConfig & { env: Record<string, string> }> {
  const env = await isolatedEnv(overrides);
  return { ...parseConfig(baseConfigSchema, env), env };
}
