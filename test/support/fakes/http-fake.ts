import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeServer {
  url: string;
  /** Requests refused because they came from an address outside the allow-list. */
  refused: Array<{ from: string; path: string }>;
  stop(): Promise<void>;
}

export type Handle = (req: IncomingMessage, body: Buffer, res: ServerResponse) => unknown;

/**
 * An honest HTTP server standing in for an outside API. Like a real partner that allow-lists the
 * egress IP, it answers only connections from `allowFrom` (when given) and refuses the rest with 403.
 */
export async function fakeServer(handle: Handle, allowFrom?: string[]): Promise<FakeServer> {
  const refused: FakeServer["refused"] = [];
  const server: Server = createServer((req, res) => {
    const from = req.socket.remoteAddress ?? "";
    if (allowFrom && !allowFrom.includes(from.replace(/^::ffff:/, ""))) {
      refused.push({ from, path: req.url ?? "" });
      res
        .writeHead(403, { "content-type": "application/json" })
        .end(JSON.stringify({ error: `source ${from} is not allow-listed` }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      Promise.resolve(handle(req, Buffer.concat(chunks), res)).catch((err) => {
        res.writeHead(500).end(String(err));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    refused,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
