// The bare node:http hello-world of the startup row: 200 "ok" on every path (the row polls /readyz) on $PORT.
// Plain JavaScript run by bare `node`, like the bundles; SIGTERM exits at once (no drain: nothing to drain).
import http from "node:http";

http.createServer((_req, res) => res.end("ok")).listen(Number(process.env.PORT));
process.once("SIGTERM", () => process.exit(0));
