/** An error with a place in the public error model: `{ error: { code, message, details } }` and an HTTP status. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
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

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(400, code, message, details);
export const unauthorized = (message = "a valid session token is required", code = "unauthorized") =>
  new AppError(401, code, message);
export const forbidden = (message: string, code = "forbidden", details?: Record<string, unknown>) =>
  new AppError(403, code, message, details);
export const notFound = (message: string, code = "not_found") => new AppError(404, code, message);
export const conflict = (message: string, code = "conflict", details?: Record<string, unknown>) =>
  new AppError(409, code, message, details);
export const gone = (message: string, code = "gone") => new AppError(410, code, message);
export const tooLarge = (message: string, code = "payload_too_large", details?: Record<string, unknown>) =>
  new AppError(413, code, message, details);
export const unsupportedMediaType = (message: string, details?: Record<string, unknown>) =>
  new AppError(415, "unsupported_media_type", message, details);
export const tooManyRequests = (retryAfterSeconds: number, message = "rate limit exceeded") =>
  new AppError(429, "rate_limited", message, { retryAfterSeconds }, { "retry-after": String(retryAfterSeconds) });
export const unavailable = (message: string, code = "unavailable", details?: Record<string, unknown>) =>
  new AppError(503, code, message, details);

/** Anything that is not an AppError is an internal fault; its text is not shown to callers. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  return new AppError(500, "internal", "internal error");
}
