// The public surface of @snapmesh/runtime: what a service may use. Everything else is internal (tests of the
// runtime itself import its modules directly).
export { type BaseConfig, baseConfigSchema, ConfigError, splitList } from "./config.js";
export type { Queryable } from "./db.js";
export {
  type CommandHandler,
  defineService,
  type FactHandler,
  type HandlerBinding,
  type Need,
  onCommand,
  onFact,
  type Runtime,
  type ServiceDefinition,
  type ServiceInstance,
  type Task,
} from "./define-service.js";
export type { EgressClient, EgressResponse } from "./egress.js";
export {
  AppError,
  appError,
  badRequest,
  conflict,
  type ErrorCode,
  forbidden,
  gone,
  notFound,
  relayedError,
  tooLarge,
  tooManyRequests,
  unauthorized,
  unavailable,
  unsupportedMediaType,
} from "./errors.js";
export type { Logger } from "./logger.js";
export type { Metrics } from "./metrics.js";
export { askPermission, type PermissionAnswer } from "./permission-client.js";
export { RateLimiter } from "./rate-limit.js";
export type { Authenticate, EffectsContext, HandlerContext, ReplyData, User } from "./registry.js";
export {
  type HttpReply,
  httpReply,
  type QueryContext,
  type RouteRequest,
  rest,
  type UploadContext,
  type UploadRequest,
} from "./routes.js";
export { SESSION_AUDIENCE, sessionVerifier } from "./tokens.js";
export { type WechatApp, wechatApp, wechatConfigShape } from "./wechat-config.js";
