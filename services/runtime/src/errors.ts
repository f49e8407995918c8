import { type CodeWithStatus, type ErrorCode, errorCatalogue } from "./error-codes.js";

export { type CodeWithStatus, type ErrorCode, type ErrorSpec, errorCatalogue, isErrorCode } from "./error-codes.js";

/**
 * An error with a place in the public error model: `{ error: { code, message, details } }` and an HTTP status.
 * `options.cause` keeps the error it wraps (logged, never shown to callers).
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "AppError";
  }

  /** 4xx errors are the caller's fault: retrying the same input cannot help (Knative treats them as terminal). */
  get terminal(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface AppErrorExtras {
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
  cause?: unknown;
}

/** The catalogue's factory: the status comes from the code; the message defaults to the catalogue's. */
export function appError(code: ErrorCode, message?: string, extras: AppErrorExtras = {}): AppError {
  const spec = errorCatalogue[code];
  return new AppError(
    spec.status,
    code,
    message ?? spec.message,
    extras.details,
    extras.headers,
    "cause" in extras ? { cause: extras.cause } : undefined,
  );
}

type RelayedCode = { [C in ErrorCode]: (typeof errorCatalogue)[C] extends { relayed: true } ? C : never }[ErrorCode];

/**
 * A 4xx another service answered with, passed on with its status and its code (those are in the other
 * service's catalogue; `fallback` when it named none).
 */
export function relayedError(
  status: number,
  code: string | undefined,
  fallback: RelayedCode,
  message: string,
  details?: Record<string, unknown>,
): AppError {
  return new AppError(status, code ?? fallback, message, details);
}

/** Re-throws `err` with more context (a batch entry's index), keeping its code, status and headers. */
export function withContext(err: AppError, prefix: string, details: Record<string, unknown>): AppError {
  return new AppError(err.status, err.code, `${prefix}${err.message}`, { ...err.details, ...details }, err.headers, {
    cause: err,
  });
}

export const badRequest = (code: CodeWithStatus<400>, message: string, details?: Record<string, unknown>) =>
  appError(code, message, { details });
export const unauthorized = (message = "a valid session token is required", code: CodeWithStatus<401> = "unauthorized") =>
  appError(code, message);
export const forbidden = (message: string, code: CodeWithStatus<403> = "forbidden", details?: Record<string, unknown>) =>
  appError(code, message, { details });
export const notFound = (message: string, code: CodeWithStatus<404> = "not_found") => appError(code, message);
export const conflict = (message: string, code: CodeWithStatus<409> = "conflict", details?: Record<string, unknown>) =>
  appError(code, message, { details });
export const gone = (message: string, code: CodeWithStatus<410> = "gone") => appError(code, message);
export const tooLarge = (message: string, code: CodeWithStatus<413> = "payload_too_large", details?: Record<string, unknown>) =>
  appError(code, message, { details });
export const unsupportedMediaType = (message: string, details?: Record<string, unknown>) =>
  appError("unsupported_media_type", message, { details });
export const tooManyRequests = (retryAfterSeconds: number, message = "rate limit exceeded") =>
  appError("rate_limited", message, {
    details: { retryAfterSeconds },
    headers: { "retry-after": String(retryAfterSeconds) },
  });
export const unavailable = (
  message: string,
  code: CodeWithStatus<503> = "unavailable",
  details?: Record<string, unknown>,
  cause?: unknown,
) => appError(code, message, { details, ...(cause === undefined ? {} : { cause }) });

/** Anything that is not an AppError is an internal fault; its text is not shown to callers. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  return appError("internal", "internal error", { cause: err });
}
