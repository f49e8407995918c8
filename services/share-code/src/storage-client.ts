import { randomUUID } from "node:crypto";
import { type SnapEvent, StorageObjectDelete, StorageObjectPut, StorageUrlSign } from "@snapmesh/events";
import { relayedError, unavailable } from "@snapmesh/runtime";

/** share-code's calls to the storage service: CloudEvent commands over HTTP, on behalf of the caller. */
export class StorageClient {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
  ) {}

  async put(authorization: string, key: string, png: Buffer, idempotencyId: string): Promise<void> {
    await this.command(
      authorization,
      StorageObjectPut.type,
      { key, contentType: "image/png", data: png.toString("base64") },
      idempotencyId,
    );
  }

  /** Removes an image this service stored (compensation when the share code it belonged to rolls back). */
  async delete(authorization: string, key: string): Promise<void> {
    await this.command(authorization, StorageObjectDelete.type, { key }, randomUUID());
  }

  async signUrl(authorization: string, key: string, ttlSeconds: number): Promise<{ url: string; expiresAt: string }> {
    const reply = await this.command(authorization, StorageUrlSign.type, { keys: [key], ttlSeconds }, randomUUID());
    const item = (reply.data as { items: Array<{ url?: string; expiresAt?: string; error?: { code: string } }> }).items[0];
    if (!item?.url || !item.expiresAt)
      throw unavailable(`storage could not sign the image URL (${item?.error?.code ?? "no item"})`, "storage_unavailable");
    return { url: item.url, expiresAt: item.expiresAt };
  }

  private async command(authorization: string, type: string, data: unknown, id: string): Promise<SnapEvent> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl.replace(/\/$/, "")}/`, {
        method: "POST",
        headers: { "content-type": "application/cloudevents+json", authorization },
        body: JSON.stringify({ specversion: "1.0", id, source: "/snapmesh/share-code", type, data }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw unavailable(
        `the storage service could not be reached: ${(err as Error).message}`,
        "storage_unavailable",
        undefined,
        err,
      );
    }
    const body = (await res.json().catch(() => ({}))) as SnapEvent & { error?: { code: string; message: string } };
    if (res.status >= 500) throw unavailable(`the storage service failed (${res.status})`, "storage_unavailable");
    if (res.status >= 400) {
      throw relayedError(res.status, body.error?.code, "storage_error", `storage refused: ${body.error?.message ?? res.status}`);
    }
    return body;
  }
}
