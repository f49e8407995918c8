// The express hello-world of the startup row (the one DESIGN.md's cold-start target compares with): express 5 from
// node_modules as such a hello-world is usually run, GET /readyz answers 200 "ok", on $PORT. Plain JavaScript run
// by bare `node`, like the bundles; SIGTERM exits at once (no drain: nothing to drain).
import express from "express";

const app = express();
app.get("/readyz", (_req, res) => {
  res.send("ok");
});
app.listen(Number(process.env.PORT));
process.once("SIGTERM", () => process.exit(0));
