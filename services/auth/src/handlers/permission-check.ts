import type { AuthPermissionCheck, AuthPermissionDecided, DataOf } from "@snapmesh/events";
import { badRequest, forbidden, type HandlerContext } from "@snapmesh/runtime";
import type { AuthDeps } from "../deps.js";

/**
 * `snapmesh.auth.permission.check`: a signed-in user may ask about themself only; a mesh service (an event
 * carrying its verified signature) may ask about any user. An answer about someone else never says
 * whether that user is an admin.
 */
export async function permissionCheck(
  data: DataOf<typeof AuthPermissionCheck>,
  ctx: HandlerContext,
  deps: Pick<AuthDeps, "permissions">,
): Promise<DataOf<typeof AuthPermissionDecided>> {
  const internal = ctx.producer !== undefined;
  const caller = internal ? ctx.user : ctx.requireUser();
  if (!internal && data.userId !== undefined && data.userId !== caller?.id) {
    throw forbidden("a user may only ask about themself", "not_self");
  }
  const userId = data.userId ?? caller?.id;
  if (!userId) throw badRequest("missing_user_id", "a mesh service must name the user it asks about");
  const decision = await deps.permissions.check({ userId, action: data.action, resource: data.resource });
  const reason = userId !== caller?.id && decision.reason === "admin" ? "allowed" : decision.reason;
  return { allowed: decision.allowed, reason, userId, action: data.action, resource: data.resource };
}
