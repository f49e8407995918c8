import { randomUUID } from "node:crypto";
import { CloudEvent, emitterFor, HTTP, Mode } from "cloudevents";
import { UserError } from "./processes.js";

export interface SendOptions {
  type: string;
  data: string;
  to: string;
  structured: boolean;
  source: string;
  token?: string;
}

export interface SendResult {
  status: number;
  reply?: Record<string, unknown>;
  error?: unknown;
}

/** Sends one CloudEvent with the official SDK (binary mode unless --structured) and decodes the reply event. */
export async function send(opts: SendOptions): Promise<SendResult> {
  let data: unknown;
  try {
    data = JSON.parse(opts.data);
  } catch (err) {
    throw new UserError(`--data is not valid JSON: ${(err as Error).message}`);
  }
  const event = new CloudEvent({
    type: opts.type,
    source: opts.source,
    id: randomUUID(),
    data,
    datacontenttype: "application/json",
  });
  let response: { status: number; headers: Record<string, string>; body: string } | undefined;
  const transport = async (message: { headers: Record<string, unknown>; body: unknown }) => {
    const headers = { ...(message.headers as Record<string, string>) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    try {
      const res = await fetch(opts.to, { method: "POST", headers, body: message.body as string });
      response = { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
    } catch (err) {
      throw new UserError(`could not reach ${opts.to}: ${(err as Error).cause ?? (err as Error).message}`);
    }
  };
  await emitterFor(transport, { mode: opts.structured ? Mode.STRUCTURED : Mode.BINARY })(event);
  const res = response!;
  if (res.status >= 400) return { status: res.status, error: safeJson(res.body) };
  if (!res.body && !res.headers["ce-id"]) return { status: res.status };
  const reply = HTTP.toEvent({ headers: res.headers, body: res.body }) as CloudEvent;
  return { status: res.status, reply: reply.toJSON() as Record<string, unknown> };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
