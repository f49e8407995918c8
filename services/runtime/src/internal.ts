// Every module of the runtime, for the runtime's own tests, the test support and the CLI. Services use
// the public surface in index.ts only.
export * from "./cloudevents-http.js";
export * from "./config.js";
export * from "./consumer.js";
export * from "./db.js";
export * from "./define-service.js";
export * from "./egress.js";
export * from "./errors.js";
export * from "./event-proof.js";
export * from "./http-server.js";
export * from "./logger.js";
export * from "./metrics.js";
export * from "./migrate.js";
export * from "./nats.js";
export * from "./nats-binding.js";
export * from "./nats-link.js";
export * from "./outbox.js";
export * from "./permission-client.js";
export * from "./rate-limit.js";
export * from "./registry.js";
export * from "./retention.js";
export { writeJson } from "./http-body.js";
export { clientAddress, type Exchange, Router } from "./router.js";
export * from "./routes.js";
export * from "./service.js";
export * from "./sinks.js";
export * from "./tokens.js";
export * from "./wechat-config.js";
