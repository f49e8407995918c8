import { unavailable } from "@snapmesh/runtime";

/**
 * Asks auth (inside the mesh) whether the caller may `action` on `resource`, with the caller's own token.
 * Only an explicit `allowed: true` allows; auth unreachable or failing is a 503 (retry), never a guess.
 */
export async function permitted(
  authUrl: string,
  authorization: string,
  action: string,
  resource: string,
  timeoutMs: number,
): Promise<boolean> {
  let res: Response;
  try {
    res = await fetch(`${authUrl.replace(/\/$/, "")}/v1/permissions/check`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body: JSON.stringify({ action, resource }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw unavailable(`the permission check could not be made: ${(err as Error).message}`, "permission_unavailable");
  }
  if (res.status >= 500) throw unavailable(`the permission check failed (${res.status})`, "permission_unavailable");
  const body = (await res.json().catch(() => ({}))) as { allowed?: unknown };
  return res.ok && body.allowed === true;
}
