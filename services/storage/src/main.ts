import { ConfigError } from "@snapmesh/runtime";
import { storage } from "./service.js";

// Workaround until the runtime fixes it: main() parses the environment before runProcess, so a ConfigError
// escapes it (exit 1 with a stack trace) instead of exiting 78 with one line per variable.
await storage.main().catch((err: unknown) => {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(78);
});
