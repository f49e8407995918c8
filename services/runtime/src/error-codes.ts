/**
 * Every error code the product answers with: its HTTP status, whether a retry can help, and a default message.
 * Codes are public contract (clients and tests match on them): add codes, never rename one.
 *
 * `retryable` follows Knative's delivery rule: it retries 5xx, 408 and 429 and treats every other 4xx as
 * terminal (dead-lettered at once). An error a retry cannot fix (bad input, the operator's configuration)
 * must therefore carry a terminal status, never 5xx.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly retryable: boolean;
  readonly message: string;
  /** The status is the one an upstream service answered with (`status` is only the fallback). */
  readonly relayed?: true;
}

const terminal = <S extends number>(status: S, message: string) => ({ status, retryable: false as const, message });
const retryable = <S extends number>(status: S, message: string) => ({ status, retryable: true as const, message });

export const errorCatalogue = {
  // 400: the request or event is malformed
  bad_request: { ...terminal(400, "bad request"), relayed: true },
  bad_http_request: terminal(400, "the request is not valid HTTP"),
  request_aborted: terminal(400, "the client aborted the request"),
  malformed_json: terminal(400, "the body is not valid JSON"),
  invalid_utf8: terminal(400, "the body is not valid UTF-8"),
  invalid_header: terminal(400, "a header is not validly percent-encoded"),
  invalid_batch: terminal(400, "a batch must be a non-empty JSON array of events"),
  not_a_cloudevent: terminal(400, "this is not a CloudEvent"),
  invalid_cloudevent: terminal(400, "the event is not valid CloudEvents 1.0"),
  missing_specversion: terminal(400, "the event has no specversion"),
  unsupported_specversion: terminal(400, "the specversion is not supported; use 1.0"),
  missing_id: terminal(400, "the event has no id"),
  missing_source: terminal(400, "the event has no source"),
  missing_type: terminal(400, "the event has no type"),
  invalid_id: terminal(400, "id must be a string"),
  invalid_source: terminal(400, "source must be a string"),
  invalid_type: terminal(400, "type must be a string"),
  invalid_attribute_name: terminal(400, "an attribute name must be 1-20 lowercase letters or digits"),
  type_subject_mismatch: terminal(400, "the event type does not match its subject"),
  unknown_event_type: terminal(400, "no handler for this event type"),
  invalid_event_data: terminal(400, "data does not match the event type's schema"),
  missing_user_id: terminal(400, "a mesh service must name the user it asks about"),
  wechat_invalid_code: terminal(400, "the login code is not valid"),
  wechat_code_used: terminal(400, "the login code was already used"),
  wechat_invalid_page: terminal(400, "WeChat does not know this page"),
  invalid_text: terminal(400, "the comment text is not valid"),
  invalid_cursor: terminal(400, "the cursor is not one this service issued"),
  invalid_parent: terminal(400, "the parent comment is not valid"),
  invalid_query: terminal(400, "the query is not valid"),
  invalid_key: terminal(400, "the object key is not valid"),
  empty_body: terminal(400, "the object is empty"),
  content_type_mismatch: terminal(400, "the bytes do not match the declared type"),
  // 401: no valid identity
  unauthorized: terminal(401, "a valid session token is required"),
  invalid_token: terminal(401, "the session token is not valid"),
  token_expired: terminal(401, "the session token has expired"),
  dev_token_refused: terminal(401, "tokens of the dev sign-in provider are not accepted here"),
  invalid_id_token: terminal(401, "the ID token is not valid"),
  id_token_expired: terminal(401, "the ID token has expired"),
  oidc_unavailable: terminal(401, "the identity provider's keys could not be fetched"),
  // 403: not allowed (or, for egress, not configured to be allowed)
  forbidden: terminal(403, "forbidden"),
  not_self: terminal(403, "a user may only ask about themself"),
  not_allowed: terminal(403, "not allowed"),
  not_owner: terminal(403, "the object belongs to another user"),
  key_taken: terminal(403, "the object key belongs to another user"),
  permission_denied: terminal(403, "permission denied"),
  provider_disabled: terminal(403, "this provider is not configured"),
  wechat_user_blocked: terminal(403, "WeChat refuses this user"),
  url_expired: terminal(403, "the URL has expired"),
  url_incomplete: terminal(403, "the URL lacks a part of its signature"),
  signature_invalid: terminal(403, "the URL's signature is not valid"),
  unknown_key: terminal(403, "the URL was signed with a key this service does not have"),
  // Configuration, not input: the operator must add the host to EGRESS_ALLOW_HOSTS; a retry cannot help.
  egress_host_not_allowed: terminal(403, "outbound calls to this host are not allowed"),
  // 404 / 409 / 410 / 416
  not_found: terminal(404, "not found"),
  route_not_found: terminal(404, "no such route"),
  comment_not_found: terminal(404, "no such comment"),
  object_not_found: terminal(404, "no such object"),
  code_not_found: terminal(404, "no such share code"),
  conflict: terminal(409, "conflict"),
  event_id_reused: terminal(409, "the event's source and id were already applied for another caller"),
  gone: terminal(410, "gone"),
  object_changed: terminal(410, "the object was replaced since this URL was issued"),
  code_expired: terminal(410, "the share code has expired"),
  range_not_satisfiable: terminal(416, "the range is not satisfiable"),
  // 413 / 415 / 431: too big or of the wrong kind
  payload_too_large: terminal(413, "the body is too large"),
  object_too_large: terminal(413, "the object is too large"),
  quota_exceeded: terminal(413, "the upload would exceed the quota"),
  params_too_large: terminal(413, "the params are too large"),
  unsupported_media_type: terminal(415, "the media type is not supported"),
  unsupported_content: terminal(415, "the bytes are not one of the allowed types"),
  headers_too_large: terminal(431, "the request headers are too large"),
  // 408 / 429: slow down or try again
  request_timeout: retryable(408, "the request was not received in time"),
  upload_idle_timeout: retryable(408, "the upload sent nothing for too long"),
  rate_limited: retryable(429, "rate limit exceeded"),
  too_many_uploads: retryable(429, "too many uploads at once"),
  // 5xx: faults of this service or one it depends on
  internal: retryable(500, "internal error"),
  egress_bad_response: retryable(502, "the upstream answered with invalid JSON"),
  wechat_bad_response: retryable(502, "the WeChat API answered without an openid"),
  wechat_error: retryable(502, "the WeChat API refused the exchange"),
  unavailable: retryable(503, "unavailable"),
  not_ready: retryable(503, "the service is not ready yet"),
  shutting_down: retryable(503, "the service is shutting down; retry"),
  dead_letters_unavailable: retryable(503, "NATS is not connected yet; retry"),
  permission_unavailable: retryable(503, "the permission check could not be made"),
  legacy_unavailable: retryable(503, "the legacy backend is unavailable"),
  wechat_unavailable: retryable(503, "the WeChat API is unavailable; retry"),
  storage_unavailable: retryable(503, "the storage service is unavailable"),
  blob_unavailable: retryable(503, "the object's bytes are not available; retry"),
  uploads_busy: retryable(503, "the service is taking as many uploads as it can; retry shortly"),
  egress_proxy_required: retryable(503, "outbound calls must go through the egress proxy, and none is configured"),
  egress_circuit_open: retryable(503, "calls to this host are paused after repeated failures"),
  egress_upstream_error: retryable(503, "the upstream failed"),
  egress_unreachable: retryable(503, "the upstream could not be reached"),
  egress_timeout: retryable(504, "the upstream did not answer in time"),
  // relayed from another service: the upstream's 4xx status and, when it gives one, its code
  permission_error: { ...terminal(400, "permission check refused"), relayed: true },
  storage_error: { ...terminal(400, "storage refused"), relayed: true },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** The codes whose status is `S`: lets a status-named helper (`badRequest`, …) accept only its own codes. */
export type CodeWithStatus<S extends number> = {
  [C in ErrorCode]: (typeof errorCatalogue)[C]["status"] extends S ? C : never;
}[ErrorCode];

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalogue, code);
}
