import { UserError } from "../processes.js";

/** Exit codes scripts can trust (sysexits where one fits). */
export const EXIT = {
  ok: 0,
  /** Something is not Ready, a check failed. */
  notReady: 1,
  /** Bad arguments: an unknown service, a missing value. */
  usage: 64,
  /** A named object does not exist (release, service, Secret). */
  notFound: 66,
  /** The API server cannot be reached. */
  unavailable: 69,
  /** The credentials were refused, or RBAC forbids the call. */
  noPermission: 77,
  /** No kubeconfig, or no such context. */
  config: 78,
} as const;

/** A failure meant for the operator: one line, and the exit code it stands for. */
export class CliError extends UserError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "CliError";
  }
}

interface ApiFailure {
  code?: number;
  body?: unknown;
  message?: string;
  cause?: { code?: string; message?: string };
}

/**
 * An error from the Kubernetes client as one clear line: what was being done, and why it failed. `server`
 * names the API server for connection failures.
 */
export function clusterError(err: unknown, doing: string, server: string): CliError {
  if (err instanceof CliError) return err;
  const e = err as ApiFailure;
  if (typeof e.code === "number") {
    const status = statusOf(e.body);
    // Without a Status body the client's message is several lines (code, message, body, headers): keep the message.
    const reason =
      status?.message ?? /^Message: (.*)$/m.exec(e.message ?? "")?.[1] ?? e.message?.split("\n")[0] ?? `HTTP ${e.code}`;
    if (e.code === 401)
      return new CliError(`${doing}: the API server refused the credentials (401 Unauthorized)`, EXIT.noPermission);
    if (e.code === 403) return new CliError(`${doing}: forbidden by RBAC: ${reason}`, EXIT.noPermission);
    if (e.code === 404) return new CliError(`${doing}: not found: ${reason}`, EXIT.notFound);
    return new CliError(`${doing}: the API server answered ${e.code}: ${reason}`, EXIT.notReady);
  }
  const network = networkCode(err);
  if (network)
    return new CliError(`${doing}: cannot reach the Kubernetes API server at ${server} (${network})`, EXIT.unavailable);
  return new CliError(`${doing}: ${(err as Error)?.message ?? String(err)}`, EXIT.notReady);
}

function statusOf(body: unknown): { message?: string; reason?: string } | undefined {
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as { message?: string };
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  return typeof body === "object" && body !== null ? (body as { message?: string }) : undefined;
}

const NETWORK = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ETIMEDOUT",
  "ECONNRESET",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function networkCode(err: unknown): string | undefined {
  for (let e = err as ApiFailure | undefined, depth = 0; e && depth < 5; e = e.cause as ApiFailure | undefined, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK.has(code)) return code;
    if (typeof code === "string" && code.startsWith("ERR_TLS")) return code;
  }
  const message = String((err as Error)?.message ?? "");
  const found = [...NETWORK].find((c) => message.includes(c));
  return found ?? (/fetch failed|socket hang up|request to .* failed/i.test(message) ? "connection failed" : undefined);
}
