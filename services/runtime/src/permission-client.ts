import { relayedError, unavailable } from "./errors.js";

export interface PermissionAnswer {
  allowed: boolean;
  reason?: string;
}

/**
 * Asks auth (inside the mesh, not through egress) whether the caller may `action` on `resource`, with the
 * caller's own token. Only an explicit `allowed: true` allows; auth unreachable or failing is a 503 (retry),
 * never a guess; auth refusing the question (4xx) is passed on with its code.
 */
export async function askPermission(
  authUrl: string,
  authorization: string,
  action: string,
  resource: string,
  timeoutMs: number,
): Promise<PermissionAnswer> {
  let res: Response;
  try {
    res = await fetch(`${authUrl.replace(/\/$/, "")}/v1/permissions/check`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body: JSON.stringify({ action, resource }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw unavailable(
      `the permission check could not be made: ${(err as Error).message}`,
      "permission_unavailable",
      undefined,
      err,
    );
  }
  if (res.status >= 500) throw unavailable(`the permission check failed (${res.status})`, "permission_unavailable");
  const body = (await res.json().catch(() => ({}))) as {
    allowed?: unknown;
    reason?: unknown;
    error?: { code: string; message: string };
  };
  if (res.status >= 400) {
    throw relayedError(res.status, body.error?.code, "permission_error", body.error?.message ?? "permission check refused");
  }
  return { allowed: body.allowed === true, ...(typeof body.reason === "string" ? { reason: body.reason } : {}) };
}
