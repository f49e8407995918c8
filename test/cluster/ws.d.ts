// The part of `ws` (a dependency of @kubernetes/client-node) the fake kubelet uses; @types/ws is not installed.
declare module "ws" {
  import type { EventEmitter } from "node:events";
  import type { IncomingMessage } from "node:http";
  import type { Duplex } from "node:stream";

  export class WebSocket extends EventEmitter {
    send(data: Buffer | string): void;
    close(): void;
    readonly protocol: string;
  }

  export class WebSocketServer extends EventEmitter {
    constructor(opts: { noServer: true; handleProtocols?: (protocols: Set<string>) => string | false });
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, done: (ws: WebSocket) => void): void;
    close(): void;
  }
}
