import { AppError, forbidden, unavailable } from "@snapmesh/runtime";

/** Asks auth (inside the mesh, not through egress) whether the caller may do `action` on `resource`; 403 with auth's reason if not. */
export async function requirePermission(
  authUrl: string,
  authorization: string,
  action: string,
  resource: string,
  timeoutMs: number,
): Promise<void> {
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
  const body = (await res.json()) as { allowed?: boolean; reason?: string; error?: { code: string; message: string } };
  if (res.status >= 400)
    throw new AppError(res.status, body.error?.code ?? "permission_error", body.error?.message ?? "permission check refused");
  if (!body.allowed) throw forbidden(`not allowed to ${action} on ${resource}`, "permission_denied", { reason: body.reason });
}
